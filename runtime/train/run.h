/*
 * run.h — private to runtime/train: what a training run carries from step to step, and
 * the parts of the loop kept in files of their own (prefix tr_):
 *
 *   train.c        the loop: epochs, steps, metrics rows, signals
 *   checkpoint.c   saving and resuming the run (ckpt.h does the files)
 *   hookrun.c      calling the Lua hooks and acting on what they ask (hooks.h)
 *   diverge.c      naming the statement behind a NaN, skipping batches (train.on_nan)
 */
#ifndef AIGC_TRAIN_RUN_H
#define AIGC_TRAIN_RUN_H

#include <stdio.h>

#include "aigc/hooks.h"
#include "aigc/metrics.h"
#include "aigc/train.h"
#include "progress.h"

enum { TR_MAX_OPTIMS = 16 };

/* What exact resume needs beyond the checkpoint module's fields, saved as named fields
 * (checkpoint.c): the epoch's running means, so the epoch row comes out the same, and
 * how much of the metrics file the checkpoint had seen, so rows written after it are
 * dropped on resume. */
typedef struct tr_record {
    mt_means train;
    int64_t metrics_bytes;
    /* The spec's learning rates when saved: a resume whose spec changed one takes the
     * new one; otherwise the saved rate stands (a hook's schedule may have moved it). */
    double spec_lr[TR_MAX_OPTIMS];
    /* train.on_nan: skip: batches skipped in this epoch, and in a row up to now. */
    int64_t skipped, skipped_in_row;
} tr_record;

/* The hooks' side of a run: the script and what it is shown. */
typedef struct tr_hooks {
    lh_state *L;           /* NULL without a hook script */
    lh_run run;
    lh_optim *optims;
    lh_tensor *tensors;
    double *values, *test;
    double *decided;       /* rank 0's requests, sent to the others (dist.h) */
    int failed;            /* the last callback raised: the run is saved before it ends */
} tr_hooks;

/* The longest path of a run directory: PATH_MAX, less room for its files' names. */
enum { TR_MAX_DIR = 3840 };

typedef struct tr_run_state {
    pg_program *p;
    const ds_data *d;
    const tr_options *o;
    char dir[TR_MAX_DIR + 256];
    int dir_fd;            /* the run directory, locked while the run writes in it */
    char metrics_path[4200];
    char resume_dir[4096]; /* the directory of the checkpoint resumed from */
    FILE *mf;
    int32_t *order;
    float *logged;         /* the step's logged values, as the last batch made them (the
                            * whole batch: summed over the ranks), and a slot for the sum
                            * of the ranks' signals */
    char *from_batch;      /* per logged value: made from the batch, not the weights alone */
    rng data_rng;
    int epoch;             /* 1-based, the one in progress */
    int64_t cursor;        /* next position in order */
    int64_t step;
    tr_record rec;
    pb_bar pr;
    tr_hooks hk;
    int stop;              /* a hook asked to stop */
    double train_seconds;  /* spent in this process's epochs of steps, and the samples */
    int64_t trained;       /* they trained: the report's rate */
    int interrupt;         /* the signal every rank knows of (SIGINT, SIGTERM), or 0 */
    char data_meta[48], vocab_meta[DS_VOCAB_RECORD]; /* the checkpoint's record of the data */
} tr_run_state;

/* checkpoint.c: `last` always; with train.checkpoint.keep K, numbered ones too, K at
 * most. */
int tr_checkpoint(tr_run_state *st, ag_error *err);
/* --resume takes a run directory (its `last`) or a checkpoint's path, with or without
 * its .safetensors or .state ending. */
int tr_resume(tr_run_state *st, const char *from, ag_error *err);
/* Whether the resumed run has done the epochs asked for, or is past them: then it
 * says so on stderr. */
int tr_nothing_to_train(const tr_run_state *st);

/* hookrun.c */
int tr_hooks_open(tr_run_state *st, ag_error *err);
void tr_hooks_close(tr_run_state *st);
/* Calls a callback, then acts on what it asked for. train and test: the epoch's means
 * for on_eval and on_epoch_end, NULL for the others. */
int tr_hook(tr_run_state *st, lh_event ev, const mt_means *train, const mt_means *test, ag_error *err);
/* The hook's extra scalars (aigc.log) into the metrics row being written. */
void tr_hook_logs(tr_run_state *st);

/* diverge.c: a logged value went NaN or infinite; a batch skipped (train.on_nan: skip);
 * an update that made a weight non-finite; an op that failed in the step. Each returns
 * AG_ERR with its message but tr_skip_batch, which returns AG_OK while the skips in a
 * row are within the limit. */
int tr_nonfinite_log(const pg_program *p, const float *values, int *which);
int tr_diverged(tr_run_state *st, int bad, ag_error *err);
int tr_skip_batch(tr_run_state *st, ag_error *err);
int tr_overflowed(tr_run_state *st, ag_error *err);
int tr_step_failed(tr_run_state *st, ag_error *err);

#endif
