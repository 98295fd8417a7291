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
 * Every malformed file — wrong magic, an element type other than unsigned byte, an
 * absurd size, fewer or more bytes than the header promises — is a user error with
 * the file's path in the message. Pixels stay uint8: the runtime converts per batch.
 *
 * idx_writer writes such a file (raw) for generated data, its items given in pieces so
 * that many images need not be held at once, replaced whole or not at all (afile.h):
 *
 *     idx_writer w;
 *     int64_t dims[] = {count, 28, 28};
 *     if (idx_write_begin(&w, "gen/train-images-idx3-ubyte", 3, dims, &err)) ...
 *     while (...) if (idx_write_items(&w, bytes, n, &err)) ...   // n items of 784 bytes
 *     if (idx_write_end(&w, &err)) ...        // renamed over the path once all came
 */
#ifndef AIGC_IDX_H
#define AIGC_IDX_H

#include <stdint.h>

#include "aigc/afile.h"
#include "aigc/base.h"

/* More dimensions than [count, rows, cols, channels] is no data set we read. */
#define IDX_MAX_DIMS 4

typedef struct idx_array {
    int ndims;                  /* 1 (labels) .. IDX_MAX_DIMS */
    int64_t dims[IDX_MAX_DIMS]; /* dims[0] is the item count */
    int64_t item_size;          /* bytes per item: the product of dims[1..] (1 for labels) */
    int64_t size;               /* bytes in data: dims[0] * item_size */
    const uint8_t *data;        /* owned, released by idx_free: an allocation, or a cache
                                 * entry's read-only mapping (then `mapped`) */
    size_t mapped;              /* the mapping's byte count; 0: allocated */
} idx_array;

/* Loads any unsigned-byte IDX file. On error *out is left empty (safe to idx_free). */
int idx_load(const char *path, idx_array *out, ag_error *err);
void idx_free(idx_array *a);

/* One split of an image data set: matching images and labels. */
typedef struct idx_dataset {
    idx_array images;      /* [count, rows, cols] */
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
void idx_dataset_free(idx_dataset *d);

/* An unsigned-byte IDX file being written. */
typedef struct idx_writer {
    af_file file;
    int64_t item_size;     /* bytes per item: the product of dims[1..] */
    int64_t left;          /* items still to come */
} idx_writer;

/* Opens path's temporary file and writes the header of ndims (1 .. IDX_MAX_DIMS)
 * dimensions, each within what idx_load accepts. */
int idx_write_begin(idx_writer *w, const char *path, int ndims, const int64_t *dims, ag_error *err);
/* The next n items, n * item_size bytes; on failure the temporary file is gone. */
int idx_write_items(idx_writer *w, const uint8_t *items, int64_t n, ag_error *err);
/* Renames the file over its path; every item the header counts must have come. */
int idx_write_end(idx_writer *w, ag_error *err);
/* Drops the temporary file of a writer that will not end (another file failed). */
void idx_write_abort(idx_writer *w);

#endif
