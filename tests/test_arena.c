/* test_arena.c — bump allocation (include/aigc/arena.h): every size, on either side of
 * the size from which a block is a mapping of its own (a slab of parameters, gradients
 * or a graph), comes back zeroed, aligned to 64 bytes and apart from every other
 * allocation of the arena, and ar_free releases it all, the arena then as new. */
#include <stdint.h>
#include <string.h>

#include "aigc/arena.h"
#include "aigc/base.h"
#include "tap.h"

/* Sizes in bytes: small ones that share a block, and slabs of 2 MB give or take. */
static const size_t sizes[] = {1, 64, 1000, 70000, (2u << 20) - 100, 2u << 20, (2u << 20) + 1, 5u << 20, 3};

static void test_sizes(ar_arena *a)
{
    unsigned char *p[AG_COUNTOF(sizes)];
    int zero = 1, aligned = 1;
    for (size_t k = 0; k < AG_COUNTOF(sizes); k++) {
        p[k] = ar_alloc(a, sizes[k]);
        aligned &= (uintptr_t)p[k] % 64 == 0;
        for (size_t j = 0; j < sizes[k]; j++) zero &= p[k][j] == 0;
        memset(p[k], (int)(k + 1), sizes[k]);
    }
    ok(zero && aligned, "%zu allocations from 1 byte to 5 MB: zeroed, aligned to 64 bytes",
       AG_COUNTOF(sizes));
    /* Each still holds its own byte: none overlaps another. */
    int apart = 1;
    for (size_t k = 0; k < AG_COUNTOF(sizes); k++)
        for (size_t j = 0; j < sizes[k]; j++) apart &= p[k][j] == (unsigned char)(k + 1);
    ok(apart, "each holds what was written to it after all were made");
    size_t total = 0;
    for (size_t k = 0; k < AG_COUNTOF(sizes); k++) total += sizes[k];
    ok(a->total == total, "the arena counts the bytes handed out: %zu", a->total);
}

int main(void)
{
    ar_arena a;
    ar_init(&a, 0);
    test_sizes(&a);
    ar_free(&a);
    ok(a.head == NULL && a.total == 0, "ar_free leaves an empty arena");
    /* Used again after ar_free, as a graph's arena is between runs. */
    test_sizes(&a);
    ar_free(&a);
    return tap_done();
}
