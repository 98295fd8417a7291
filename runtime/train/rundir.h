/*
 * rundir.h — private to runtime/train: the run directory (prefix rd_). It is made with
 * its parents, locked while a run writes there, keeps its numbered checkpoints to a
 * count, and on resume gets back the metrics up to the checkpoint.
 */
#ifndef AIGC_TRAIN_RUNDIR_H
#define AIGC_TRAIN_RUNDIR_H

#include <stdint.h>

#include "aigc/base.h"

/* Makes path and the directories above it. */
int rd_make(const char *path, ag_error *err);

/* One run at a time in a directory: *fd (>= 0 on success, else -1) holds the lock
 * until it is closed. A second run is refused with a message. */
int rd_lock(const char *dir, int *fd, ag_error *err);

/* Deletes what a save killed half way left in dir: the temporary files of checkpoints
 * (last.* and step-N.*, .safetensors or .state, with .tmp after), nothing else. Only
 * under the lock: a running save's file is not stale. */
void rd_clean(const char *dir);

/* Deletes the oldest numbered checkpoints (step-NNNNNNNN.*) of dir beyond `keep`. */
void rd_prune(const char *dir, int keep);

/* The metrics file at metrics_path (in dir) as the checkpoint in resume_dir saw it:
 * its first `bytes`. */
int rd_resume_metrics(const char *resume_dir, const char *dir, const char *metrics_path, int64_t bytes,
                      ag_error *err);

#endif
