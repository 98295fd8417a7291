/* arena.c — bump allocation in growing blocks; one free releases everything. */
#include "aigc/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "aigc/base.h"

enum { AR_ALIGN = 64 };

struct ar_block {
    ar_block *next;
    size_t size, used;
    size_t mapped;   /* bytes of its own mapping, or 0 for the heap's */
    /* The payload follows; its start is aligned by ar_alloc. */
    unsigned char mem[];
};

/* A block of at least AR_HUGE bytes (a graph's slab, the parameters, their gradients,
 * an optimizer's state) is a mapping of its own, aligned to and marked for transparent
 * huge pages: a training step touches every page of its slabs, and 2 MB pages take
 * 512 times fewer faults to first touch and TLB entries after (docs/performance.md,
 * Memory). Under AddressSanitizer every block stays on its heap, whose bounds it
 * checks. */
enum { AR_HUGE = 2u << 20 };

#if defined(MADV_HUGEPAGE) && !defined(__SANITIZE_ADDRESS__)
static ar_block *block_new(size_t len)
{
    if (len < AR_HUGE) return ag_xcalloc(1, len);
    size_t whole = (len + AR_HUGE - 1) & ~(size_t)(AR_HUGE - 1), span = whole + AR_HUGE;
    char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return ag_xcalloc(1, len); /* the heap's answer, or its message */
    char *at = (char *)(((uintptr_t)m + AR_HUGE - 1) & ~(uintptr_t)(AR_HUGE - 1));
    if (at > m) munmap(m, (size_t)(at - m));
    if (at + whole < m + span) munmap(at + whole, (size_t)(m + span - (at + whole)));
    madvise(at, whole, MADV_HUGEPAGE);
    ar_block *b = (ar_block *)at; /* zeros, as calloc's */
    b->mapped = whole;
    return b;
}
#else
static ar_block *block_new(size_t len) { return ag_xcalloc(1, len); }
#endif

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
    b = block_new(sizeof *b + size);
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
        if (b->mapped)
            munmap(b, b->mapped);
        else
            free(b);
    }
    a->head = NULL;
    a->total = 0;
}
