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
 */
#ifndef AIGC_IDX_H
#define AIGC_IDX_H

#include <stdint.h>

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

#endif
