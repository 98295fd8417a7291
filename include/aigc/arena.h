/*
 * arena.h — bump allocation (prefix ar_).
 *
 * Everything that lives as long as a graph, a spec or a run is carved from an arena
 * and released all at once with ar_free. Blocks grow as needed at setup time; the
 * training loop never allocates. Returned memory is zeroed and aligned to 64 bytes
 * (a cache line, and enough for any SIMD load).
 */
#ifndef AIGC_ARENA_H
#define AIGC_ARENA_H

#include <stddef.h>

typedef struct ar_block ar_block;

typedef struct ar_arena {
    ar_block *head;   /* newest block first */
    size_t block_size;
    size_t total;     /* bytes handed out, for reports */
} ar_arena;

void ar_init(ar_arena *a, size_t block_size);
void *ar_alloc(ar_arena *a, size_t n);
char *ar_strdup(ar_arena *a, const char *s);
char *ar_strndup(ar_arena *a, const char *s, size_t n);
void ar_free(ar_arena *a);

#endif
