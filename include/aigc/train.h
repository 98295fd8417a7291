/*
 * train.h — the training run (prefix tr_): epochs over the data, the step program on
 * each batch, metrics, progress, and a sample grid per epoch.
 *
 * A run writes into its directory (runs/NAME by default):
 *   metrics.jsonl           one JSON object per line: {"kind":"step", ...} every
 *                           log_every steps, {"kind":"epoch", ...} with train and test
 *                           means at each epoch's end
 *   samples-epoch-NNN.png   the spec's sample: section, after each epoch
 * Progress goes to stderr (a live bar on a terminal, a plain line at most every few
 * seconds otherwise); a summary line per epoch goes to stdout.
 */
#ifndef AIGC_TRAIN_H
#define AIGC_TRAIN_H

#include "aigc/idx.h"
#include "aigc/program.h"

typedef struct tr_options {
    const char *out_dir;   /* NULL: runs/NAME */
    int progress;          /* -1 auto (terminal or not), 0 plain lines, 1 live bar */
    const char *resume;    /* a run directory or a checkpoint to continue, or NULL */
    int unsafe_hooks;      /* hooks may use io and os */
    int warn_hooks;        /* a failing hook is reported and training goes on */
} tr_options;

typedef struct tr_data {
    idx_dataset train, test;
    int has_test;
} tr_data;

/* Loads the spec's data set; messages start with the spec's data.path location. */
int tr_load_data(const sp_spec *s, tr_data *d, ag_error *err);
void tr_free_data(tr_data *d);

/* Trains. A checkpoint `last` (NAME.safetensors + NAME.state) is written in the run
 * directory after every epoch, every train.checkpoint.every steps, when a hook asks,
 * and when a hook fails; with --resume the run continues from one exactly. */
int tr_run(pg_program *p, const tr_data *d, const tr_options *o, ag_error *err);

/* Sample section k's grid into path, its noise drawn from seed, test_x from d; with a
 * strip, the strip too, into tr_strip_path(path). */
int tr_write_samples(pg_program *p, int k, const tr_data *d, const char *path, uint64_t seed,
                     ag_error *err);

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
