/*
 * progress.h — private to runtime/train: the progress line on stderr (prefix pb_).
 * On a terminal a live bar redrawn ten times a second; otherwise a plain line at most
 * every 10 s, so that a log file stays short.
 */
#ifndef AIGC_TRAIN_PROGRESS_H
#define AIGC_TRAIN_PROGRESS_H

#include <stdint.h>

#include "aigc/program.h"

/* The line shows the logged values of the last batch that was not skipped
 * (train.on_nan: skip), not the skipped one's -inf or NaN: `shown` of them, the rest
 * would not fit on the line anyway. */
enum { PB_SHOWN = 16 };

typedef struct pb_bar {
    int live;
    int off;               /* shows nothing: another rank's (dist.h) */
    double start, last;
    int at_epoch;          /* the epoch and position of the last line written */
    int64_t at;
    int shown;
    float values[PB_SHOWN];
} pb_bar;

/* Seconds on the monotonic clock. */
double pb_now(void);

/* `done` of the epoch's `total` samples, `from` of them done before this process
 * started on the epoch (a resumed run): the line shows where the epoch is, the rate and
 * the ETA count what this process did. `final` writes it whatever the time. */
void pb_update(pb_bar *pb, const pg_program *p, int epoch, int64_t done, int64_t total, int64_t from,
               int64_t skipped, double epoch_start, int final);

#endif
