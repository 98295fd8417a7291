/*
 * idx.h — IDX data files, the MNIST format (prefix idx_).
 *
 * An IDX file is a 4-byte magic (two zero bytes, an element type, the number of
 * dimensions), one big-endian uint32 per dimension, then the elements in row-major
 * order. MNIST and Fashion-MNIST use unsigned bytes: images are 0x00000803
 * [count, rows, cols], labels are 0x00000801 [count]. Files may be gzip-compressed
 * or raw; zlib tells them apart by the gzip magic, so the name's ".gz" does not matter.
 *
 *     idx_dataset train;
 *     ag_error err;
 *     if (idx_load_split("data/mnist", "train", &train, &err) != AG_OK) {
 *         fprintf(stderr, "%s\n", err.msg);   // e.g. "data/mnist/...: truncated: ..."
 *         return 1;
 *     }
 *     // train.count images of train.rows x train.cols bytes at train.images.data
 *     idx_dataset_free(&train);
 *
 * Every malformed file — wrong magic, an element type other than the one expected, an
 * absurd size, fewer or more bytes than the header promises — is a user error with
 * the file's path in the message. Pixels stay uint8: the runtime converts per batch.
 *
 * idx_writer writes such a file (raw) for generated data, its items given in pieces so
 * that many images need not be held at once, replaced whole or not at all (afile.h):
 *
 *     idx_writer w;
 *     int64_t dims[] = {count, 28, 28};
 *     if (idx_write_begin(&w, "gen/train-images-idx3-ubyte", IDX_UBYTE, 3, dims, &err)) ...
 *     while (...) if (idx_write_items(&w, bytes, n, &err)) ...   // n items of 784 bytes
 *     if (idx_write_end(&w, &err)) ...        // renamed over the path once all came
 *
 * Features (aigc-run encode's output, read by `dataset: features`) are float32 IDX
 * files, type 0x0D, [count, F], each float big-endian as the format has it. They stay
 * in the file's byte order too (a cached file is a read-only mapping): idx_float
 * decodes one.
 */
#ifndef AIGC_IDX_H
#define AIGC_IDX_H

#include <stdint.h>

#include "aigc/afile.h"
#include "aigc/base.h"

/* More dimensions than [count, rows, cols, channels] is no data set we read. */
#define IDX_MAX_DIMS 4

/* The element types read: MNIST's bytes, and features' floats. */
enum { IDX_UBYTE = 0x08, IDX_FLOAT = 0x0D };

typedef struct idx_array {
    int ndims;                  /* 1 (labels) .. IDX_MAX_DIMS */
    int type;                   /* IDX_UBYTE or IDX_FLOAT */
    int64_t dims[IDX_MAX_DIMS]; /* dims[0] is the item count */
    int64_t item_size;          /* bytes per item: the product of dims[1..] (1 for labels),
                                 * times 4 for floats */
    int64_t size;               /* bytes in data: dims[0] * item_size */
    const uint8_t *data;        /* owned, released by idx_free: an allocation, or a cache
                                 * entry's read-only mapping (then `mapped`) */
    size_t mapped;              /* the mapping's byte count; 0: allocated */
} idx_array;

/* Loads any unsigned-byte IDX file. On error *out is left empty (safe to idx_free). */
int idx_load(const char *path, idx_array *out, ag_error *err);
/* The same for an IDX file of element type `type` (IDX_UBYTE or IDX_FLOAT). */
int idx_load_typed(const char *path, int type, idx_array *out, ag_error *err);
void idx_free(idx_array *a);

/* Element i of a float array, from its big-endian bytes. */
static inline float idx_float(const idx_array *a, int64_t i)
{
    const uint8_t *p = a->data + 4 * i;
    union {
        uint32_t u;
        float f;
    } v = {.u = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]};
    return v.f;
}

/* What a split's file holds, named {split}-STEM with STEM images-idx3-ubyte,
 * features-idx2-float or labels-idx1-ubyte. */
typedef enum idx_file { IDX_IMAGES, IDX_FEATURES, IDX_LABELS, IDX_FILE_COUNT } idx_file;

/* dir/{split}-STEM followed by ending ("" or ".gz") into buf; AG_ERR when it does not
 * fit n. */
int idx_split_path(const char *dir, const char *split, idx_file what, const char *ending, char *buf, size_t n);

/* One split of an image data set: matching images and labels. A split of features is
 * one too, its items [count, 1, F] floats. */
typedef struct idx_dataset {
    idx_array images;      /* [count, rows, cols], or features [count, F] */
    idx_array labels;      /* [count] */
    int64_t count;
    int rows, cols;
    int classes;           /* largest label + 1 */
} idx_dataset;

/* Loads {split}-images-idx3-ubyte and {split}-labels-idx1-ubyte from dir, each raw or
 * with ".gz" (the raw file wins when both exist: someone unpacked it on purpose).
 * split is "train" or "t10k". Checks that the images are 3-d, the labels 1-d, and that
 * both hold the same, non-zero count. */
int idx_load_split(const char *dir, const char *split, idx_dataset *out, ag_error *err);
/* The same for features: {split}-features-idx2-float and {split}-labels-idx1-ubyte,
 * raw or ".gz"; rows is 1, cols the features' count F. */
int idx_load_features(const char *dir, const char *split, idx_dataset *out, ag_error *err);
void idx_dataset_free(idx_dataset *d);

/* An IDX file being written, its items given in pieces. */
typedef struct idx_writer {
    af_file file;
    int type;              /* IDX_UBYTE or IDX_FLOAT */
    int64_t per_item;      /* elements per item: the product of dims[1..] */
    int64_t left;          /* items still to come */
} idx_writer;

/* Opens path's temporary file and writes the header of an IDX file of element type
 * `type` and ndims (1 .. IDX_MAX_DIMS) dimensions, each within what idx_load accepts. */
int idx_write_begin(idx_writer *w, const char *path, int type, int ndims, const int64_t *dims, ag_error *err);
/* The next n items, in the host's order: bytes for IDX_UBYTE, floats for IDX_FLOAT
 * (written big-endian). On failure the temporary file is gone. */
int idx_write_items(idx_writer *w, const void *items, int64_t n, ag_error *err);
/* Renames the file over its path; every item the header counts must have come. */
int idx_write_end(idx_writer *w, ag_error *err);
/* Drops the temporary file of a writer that will not end (another file failed). */
void idx_write_abort(idx_writer *w);
/* The whole file at once: dims[0] items at data. */
int idx_write(const char *path, int type, int ndims, const int64_t *dims, const void *data, ag_error *err);

#endif
