/*
 * train.h — the training run (prefix tr_): epochs over the data, the step program on
 * each batch, metrics, progress, a sample grid and a checkpoint per epoch.
 *
 * A run writes into its directory (runs/NAME by default):
 *   metrics.jsonl           one JSON object per line: {"kind":"step", ...} every
 *                           log_every steps, {"kind":"epoch", ...} with train and test
 *                           means at each epoch's end (and, for text with train.nll,
 *                           test_bits_per_char)
 *   samples-epoch-NNN.png   the spec's sample: section, after each epoch
 *   report.html, run.json, spec.yaml   the run's report page (report.h), its facts
 *                           and its spec, after every epoch
 *   last.safetensors, last.state   the checkpoint (ckpt.h), after every epoch, every
 *                           train.checkpoint.every steps, when a hook asks, when a hook
 *                           fails, and on SIGINT or SIGTERM
 * Progress goes to stderr (a live bar on a terminal, a plain line at most every few
 * seconds otherwise); a summary line per epoch goes to stdout.
 *
 *     ds_data d;  pg_program p;
 *     ds_load(&spec, &d, &err);
 *     pg_build(&p, &spec, d.train.rows, d.train.cols, d.train.classes, &err);
 *     tr_options o = {.progress = -1};
 *     if (tr_run(&p, &d, &o, &err)) ...
 */
#ifndef AIGC_TRAIN_H
#define AIGC_TRAIN_H

#include "aigc/dataset.h"
#include "aigc/program.h"

typedef struct tr_options {
    const char *out_dir;   /* NULL: runs/NAME */
    int progress;          /* -1 auto (terminal or not), 0 plain lines, 1 live bar */
    const char *resume;    /* a run directory or a checkpoint to continue, "" for the
                            * run's own directory, or NULL */
    int unsafe_hooks;      /* hooks may use io and os */
    int warn_hooks;        /* a failing hook is reported and training goes on */
    const char *command;   /* the command line, for the run's report, or NULL */
} tr_options;

/* Trains; with o->resume the run continues from a checkpoint exactly. */
int tr_run(pg_program *p, const ds_data *d, const tr_options *o, ag_error *err);

#endif
