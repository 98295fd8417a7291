/*
 * dataset.h — a spec's data set, both splits, ready to be drawn in batches (prefix ds_).
 *
 * Images come from IDX files (idx.h); text from a corpus cut into windows of
 * context + 1 token ids, stored as images of one row with labels all 0 and the
 * vocabulary's size as the number of classes. Either way, training draws items, and an
 * epoch's order, cursor and exact resume are the same code.
 *
 *     ds_data d;
 *     if (ds_load(&spec, &d, &err)) ...            // "specs/gan.yaml:6:9: cannot load ..."
 *     ds_fill_batch(pixels, labels, &d.train, order, at, n);
 *     ds_free(&d);
 */
#ifndef AIGC_DATASET_H
#define AIGC_DATASET_H

#include "aigc/graph.h"
#include "aigc/idx.h"
#include "aigc/spec.h"
#include "aigc/text.h"

typedef struct ds_data {
    idx_dataset train, test;
    int has_test;
    sp_data_kind kind;
    tx_corpus text;        /* kind SP_DATA_TEXT: the corpus, for its vocabulary */
    int recorded;          /* ds_recorded: the geometry and vocabulary alone */
    ag_error absent;       /* ... and why the data set itself could not be read */
} ds_data;

/* Loads the spec's data set; messages start with the spec's data.path location. */
int ds_load(const sp_spec *s, ds_data *d, ag_error *err);
/* For sampling without the data set (absent says why it could not be read): the data's
 * image size and class count, and a text corpus's vocabulary, as the checkpoint's
 * weights file at path recorded them (ds_record), with no images. 0 when it holds no
 * record of this spec's kind of data. */
int ds_recorded(const sp_spec *s, const char *path, const ag_error *absent, ds_data *d);
void ds_free(ds_data *d);

/* The checkpoint's record of the data, for ds_recorded: "ROWSxCOLS CLASSES" into data
 * (n bytes), and for text the vocabulary's bytes in hex, in token order, into vocab
 * (DS_VOCAB_RECORD bytes). */
enum { DS_VOCAB_RECORD = 2 * 256 + 1 };
void ds_record(const ds_data *d, char *data, size_t n, char *vocab);

/* Item `item` of ds as floats into dst (rows * cols of them): bytes 0..255, or
 * features as they are. */
void ds_item(const idx_dataset *ds, int64_t item, float *dst);

/* Items [at, at + n) of ds (in `order` when given) into a graph's pixel and label
 * inputs, bytes to floats per batch: the data set stays uint8, a quarter of the memory. */
void ds_fill_batch(ag_node *pixels, ag_node *labels, const idx_dataset *ds, const int32_t *order, int64_t at,
                   int n);

#endif
