/*
 * pool.h — the process's worker threads for element-wise work, Adam and split sgemms
 * (prefix tp_).
 *
 *     tp_set_threads(2);                      // the caller and one worker
 *     tp_for(n, 4096, scale_range, &args);    // scale_range(&args, lo, hi) over [0, n)
 *
 * tp_for cuts [0, n) into at most tp_threads() chunks of at least `grain` elements,
 * each starting at a multiple of 16 (whole cache lines of floats), and returns when all
 * have run. The cut depends only on n, grain and the thread count, never on timing, so
 * a function that writes each element from its own inputs gives the same bits at every
 * thread count, and one that reduces within a chunk the same bits at a given count.
 *
 * Any thread runs any chunk: the caller takes chunks too, and takes them all when a
 * worker is slow to wake or has lost its core to another process, so a busy machine
 * slows a step down but never stalls it. Workers spin briefly for the next job, then
 * yield their core for a while, then sleep on a futex (docs/performance.md,
 * Threading). tp_for is called from one thread at a time and not from inside a chunk.
 */
#ifndef AIGC_POOL_H
#define AIGC_POOL_H

#include <stdint.h>

enum { TP_MAX_THREADS = 16 };

typedef void (*tp_fn)(void *ctx, int64_t lo, int64_t hi);

/* n >= 1 threads in all, the caller included: starts or stops workers. */
void tp_set_threads(int n);
int tp_threads(void);

void tp_for(int64_t n, int64_t grain, tp_fn fn, void *ctx);

#endif
