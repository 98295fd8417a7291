/*
 * train.h — the training run (prefix tr_): epochs over the data, the step program on
 * each batch, metrics, progress, and a sample grid per epoch.
 *
 * A run writes into its directory (runs/NAME by default):
 *   metrics.jsonl           one JSON object per line: {"kind":"step", ...} every
 *                           log_every steps, {"kind":"epoch", ...} with train and test
 *                           means at each epoch's end (and, for text with train.nll,
 *                           test_bits_per_char)
 *   samples-epoch-NNN.png   the spec's sample: section, after each epoch
 * Progress goes to stderr (a live bar on a terminal, a plain line at most every few
 * seconds otherwise); a summary line per epoch goes to stdout.
 */
#ifndef AIGC_TRAIN_H
#define AIGC_TRAIN_H

#include <stdio.h>

#include "aigc/idx.h"
#include "aigc/program.h"
#include "aigc/text.h"

typedef struct tr_options {
    const char *out_dir;   /* NULL: runs/NAME */
    int progress;          /* -1 auto (terminal or not), 0 plain lines, 1 live bar */
    const char *resume;    /* a run directory or a checkpoint to continue, or NULL */
    int unsafe_hooks;      /* hooks may use io and os */
    int warn_hooks;        /* a failing hook is reported and training goes on */
} tr_options;

/* The items of both splits: images with labels, or for text, windows of context + 1
 * token ids stored as images of one row (labels all 0), with classes set to the
 * vocabulary's size. Either way, training draws items, and an epoch's order, cursor
 * and exact resume are the same code. */
typedef struct tr_data {
    idx_dataset train, test;
    int has_test;
    sp_data_kind kind;
    tx_corpus text;        /* kind SP_DATA_TEXT: the corpus, for its vocabulary */
    int recorded;          /* tr_data_recorded: the geometry and vocabulary alone */
    ag_error absent;       /* ... and why the data set itself could not be read */
} tr_data;

/* Loads the spec's data set; messages start with the spec's data.path location. */
int tr_load_data(const sp_spec *s, tr_data *d, ag_error *err);
/* For sampling without the data set (absent says why it could not be read): the data's
 * image size and class count, and a text corpus's vocabulary, as the checkpoint's
 * weights file at path recorded them, with no images. 0 when it holds no record of
 * this spec's kind of data (a checkpoint from before the record). */
int tr_data_recorded(const sp_spec *s, const char *path, const ag_error *absent, tr_data *d);
void tr_free_data(tr_data *d);
/* `aigc-run check`: for text, what was read: files, bytes, the vocabulary, the split
 * and its windows. Nothing for images. */
void tr_print_data(const sp_spec *s, const tr_data *d, FILE *out);

/* Trains. A checkpoint `last` (NAME.safetensors + NAME.state) is written in the run
 * directory after every epoch, every train.checkpoint.every steps, when a hook asks,
 * and when a hook fails; with --resume the run continues from one exactly. */
int tr_run(pg_program *p, const tr_data *d, const tr_options *o, ag_error *err);

/* Sample section k's grid into path, its noise drawn from seed, test_x from d; a text
 * section's texts (its token ids decoded with d's vocabulary) instead, path "-" for
 * stdout, each after a "--- sample K of N" line when there are several. */
int tr_write_samples(pg_program *p, int k, const tr_data *d, const char *path, uint64_t seed,
                     ag_error *err);

/* Writes sample section k's image inputs (its `inputs:` of kind image) from their PNG
 * files, and its text inputs as token ids in d's vocabulary; an input with no file, an
 * unreadable file or one of the wrong size, or text with a byte the vocabulary lacks,
 * is an error. Only the first call writes them. tr_draw_samples calls it; tr_run calls it
 * before training, so that a section drawn each epoch fails at the start and not after
 * the first epoch. */
int tr_sample_inputs(pg_program *p, int k, const tr_data *d, ag_error *err);

/* Where a section's strip goes beside its grid: "a/b.png" -> "a/b-strip.png". AG_ERR
 * when it does not fit in n bytes. */
int tr_strip_path(const char *grid, char *buf, size_t n);

/* Runs sample section k with its noise drawn from seed, test_x from d's test split
 * starting at image first (wrapping around); the images are then
 * p->samples[k].image->data. */
int tr_draw_samples(pg_program *p, int k, const tr_data *d, int64_t first, uint64_t seed, ag_error *err);

/* A classifier's logits: the step's tensor named `logits` when it is [B, classes],
 * else NULL. With one, evaluation also reports test_accuracy (argmax == label). */
ag_node *tr_logits(const pg_program *p);

/* The logged values' means over the test split, as lines "test_NAME VALUE" or as one
 * JSON object; for a classifier (tr_logits) also test_accuracy. */
int tr_evaluate(pg_program *p, const tr_data *d, FILE *out, int json, ag_error *err);

#endif
