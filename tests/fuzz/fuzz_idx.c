/*
 * fuzz_idx.c — the IDX reader, idx_load, on both of its paths. The first byte picks
 * one: even, the rest is written as it is (a raw file, or gzip data when it starts
 * with the gzip magic, so corrupt gzip streams are reached too); odd, the rest is
 * gzip-compressed first, so that mutations of the IDX content reach the header and
 * size checks behind zlib's decompression.
 */
#include <zlib.h>

#include "aigc/idx.h"
#include "fuzz.h"

static void fuzz_idx(const uint8_t *data, size_t size)
{
    if (size == 0) return;
    const char *path;
    if (data[0] & 1) {
        path = fuzz_path(0, "data.idx.gz");
        gzFile gz = gzopen(path, "wb");
        if (!gz || (size > 1 && gzwrite(gz, data + 1, (unsigned)(size - 1)) != (int)(size - 1)) ||
            gzclose(gz) != Z_OK) {
            perror(path);
            abort();
        }
    } else {
        path = fuzz_write(0, "data.idx", data + 1, size - 1);
    }
    idx_array a;
    ag_error err;
    if (idx_load(path, &a, &err) == AG_OK) {
        /* Every byte the header promised is there. */
        AG_ASSERT(a.size == a.dims[0] * a.item_size);
        volatile uint8_t sum = 0;
        for (int64_t k = 0; k < a.size; k++) sum += a.data[k];
        (void)sum;
    }
    idx_free(&a);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_idx(data, size);
    return 0;
}
#endif
