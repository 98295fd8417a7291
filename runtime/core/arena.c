/* arena.c — bump allocation in growing blocks; one free releases everything. */
#include "aigc/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/base.h"

enum { AR_ALIGN = 64 };

struct ar_block {
    ar_block *next;
    size_t size, used;
    /* The payload follows; its start is aligned by ar_alloc. */
    unsigned char mem[];
};

void ar_init(ar_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
    a->total = 0;
}

void *ar_alloc(ar_arena *a, size_t n)
{
    ar_block *b = a->head;
    if (b) {
        uintptr_t at = ((uintptr_t)(b->mem + b->used) + AR_ALIGN - 1) & ~(uintptr_t)(AR_ALIGN - 1);
        size_t off = (size_t)(at - (uintptr_t)b->mem);
        if (off + n <= b->size) {
            b->used = off + n;
            a->total += n;
            return b->mem + off;
        }
    }
    /* A new block: big requests get a block of their own size, so a slab of
     * parameters never wastes a half-empty block. */
    size_t size = n + AR_ALIGN > a->block_size ? n + AR_ALIGN : a->block_size;
    b = ag_xcalloc(1, sizeof *b + size);
    b->size = size;
    b->next = a->head;
    a->head = b;
    uintptr_t at = ((uintptr_t)b->mem + AR_ALIGN - 1) & ~(uintptr_t)(AR_ALIGN - 1);
    size_t off = (size_t)(at - (uintptr_t)b->mem);
    b->used = off + n;
    a->total += n;
    return b->mem + off;
}

char *ar_strndup(ar_arena *a, const char *s, size_t n)
{
    char *d = ar_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *ar_strdup(ar_arena *a, const char *s) { return ar_strndup(a, s, strlen(s)); }

void ar_free(ar_arena *a)
{
    for (ar_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
    a->total = 0;
}
