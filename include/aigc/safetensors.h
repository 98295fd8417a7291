/*
 * safetensors.h — reading and writing safetensors files (prefix sf_).
 *
 * The format PyTorch users load with safetensors.torch.load_file:
 *
 *     8 bytes        N, the header length, unsigned little-endian
 *     N bytes        a JSON object, UTF-8, padded with spaces:
 *                      {"__metadata__": {"format": "pt", ...},        (optional)
 *                       "G.0.weight": {"dtype": "F32", "shape": [256, 100],
 *                                      "data_offsets": [0, 102400]}, ...}
 *     the rest       the data section: each tensor's bytes, row-major, little-endian,
 *                    at [begin, end) of the data_offsets, relative to the section
 *
 * Writing:
 *
 *     sf_tensor t[] = {{.name = "fc.weight", .ndim = 2, .shape = {4, 8}, .data = w},
 *                      {.name = "fc.bias", .ndim = 1, .shape = {4}, .data = b}};
 *     sf_meta m[] = {{"format", "pt"}};
 *     if (sf_write("model.safetensors", t, 2, m, 1, &err)) fputs(err.msg, stderr);
 *
 * The tensors go out in the order given, contiguous; the header is padded so that the
 * data section starts at a multiple of 8 bytes. The file is written as PATH.tmp,
 * flushed to disk and renamed over PATH: a crash or a full disk never leaves a
 * half-written file, and an existing PATH is replaced only by a complete one.
 *
 * Reading:
 *
 *     sf_file f;
 *     if (sf_open(&f, "model.safetensors", &err)) { fputs(err.msg, stderr); ... }
 *     const sf_tensor *w = sf_get(&f, "fc.weight");          // NULL when absent
 *     const char *fmt = sf_meta_get(&f, "format");            // NULL when absent
 *     sf_close(&f);
 *
 * A file is treated as hostile: everything in it is checked before it is used, and a
 * file that fails a check is refused with one message that starts with its path. The
 * checks: the length fields against the file, the header as strict JSON (objects,
 * strings with escapes, arrays of integers; the header's schema bounds the nesting at
 * three levels, and nothing may follow the top object but spaces), the header as
 * UTF-8, every key present once, known dtypes, shapes, each tensor's byte range
 * against its shape and against the data section, and the ranges against each other:
 * no overlap, no byte of the data section left uncovered.
 *
 * Only F32 tensors are read. The other safetensors dtypes (F64, F16, BF16, the F8
 * types, the integers and BOOL) are refused by name.
 */
#ifndef AIGC_SAFETENSORS_H
#define AIGC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "aigc/arena.h"
#include "aigc/base.h"

enum { SF_MAX_DIMS = 8 };

/* The largest header read; the reference implementation refuses larger ones too. */
#define SF_MAX_HEADER ((uint64_t)100 << 20)

typedef struct sf_tensor {
    const char *name;
    int ndim;                   /* 0 is a scalar: one element */
    int64_t shape[SF_MAX_DIMS];
    const float *data;          /* numel floats: the file's (reading), the caller's (writing) */
} sf_tensor;

typedef struct sf_meta {
    const char *key, *value;
} sf_meta;

typedef struct sf_file {
    const char *path;
    int n;
    sf_tensor *t;               /* in the header's order */
    int nmeta;
    sf_meta *meta;
    int *by_name;               /* indices into t, sorted by name, for sf_get */
    float *data;                /* the data section */
    ar_arena arena;             /* names, strings, the path */
} sf_file;

int64_t sf_numel(const sf_tensor *t);
/* "[256, 100]" into buf, which SF_MAX_DIMS numbers fit in when it has 256 bytes. */
const char *sf_shape_str(const sf_tensor *t, char *buf, size_t len);

/* Writes n tensors and nmeta metadata pairs (keys distinct, not "__metadata__") to
 * path. Tensor names must be distinct. */
int sf_write(const char *path, const sf_tensor *t, int n, const sf_meta *meta, int nmeta,
             ag_error *err);

/* Reads and checks the whole file. On error f is left closed (safe to sf_close). */
int sf_open(sf_file *f, const char *path, ag_error *err);
const sf_tensor *sf_get(const sf_file *f, const char *name);
const char *sf_meta_get(const sf_file *f, const char *key);
void sf_close(sf_file *f);

#endif
