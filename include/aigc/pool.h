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
 * tp_sum adds up a function's sums over fixed blocks of [0, n), the blocks cut from n
 * alone and their sums added in order: the same bits at every thread count, which a sum
 * cut at tp_for's chunks would not give.
 *
 * Any thread runs any chunk: the caller takes chunks too, and takes them all when a
 * worker is slow to wake or has lost its core to another process, so a busy machine
 * slows a step down but never stalls it. Workers spin briefly for the next job, then
 * yield their core for a while, then sleep on a futex (docs/performance.md,
 * Threads). tp_for is called from one thread at a time, or from inside a chunk: there
 * the pool is the one thread running it (tp_threads() is 1, and every job runs whole on
 * it, as with one thread), so that each chunk of a job can run work written for the
 * pool, such as a graph's forward, on a thread of its own.
 */
#ifndef AIGC_POOL_H
#define AIGC_POOL_H

#include <stdint.h>

enum { TP_MAX_THREADS = 16 };

typedef void (*tp_fn)(void *ctx, int64_t lo, int64_t hi);

/* n >= 1 threads in all, the caller included: starts or stops workers. */
void tp_set_threads(int n);
/* n, or 1 inside a chunk. */
int tp_threads(void);

void tp_for(int64_t n, int64_t grain, tp_fn fn, void *ctx);
/* How many chunks tp_for(n, grain, ...) cuts [0, n) into now (1 inside a chunk): for
 * work laid out to match another job's chunks. */
int tp_for_chunks(int64_t n, int64_t grain);

/* tp_for for work that writes each element from its own inputs, whose result does not
 * depend on the cut: up to TP_EACH_CHUNKS chunks per thread, claimed as threads come
 * free, so that a thread slowed by another process or still waking runs fewer of them
 * and the others do not wait for it. */
enum { TP_EACH_CHUNKS = 4 };
void tp_for_each(int64_t n, int64_t grain, tp_fn fn, void *ctx);

/* fn(ctx, 0, 1) on a worker while the caller goes on: setup that can overlap the
 * caller's (oneDNN making its kernels while a run loads its data). The next job, or a
 * change of the thread count, first waits for it; with one thread it runs at once. */
void tp_aside(tp_fn fn, void *ctx);

/* The calling thread's number, 0 (the caller) to tp_threads() - 1: a chunk that needs
 * scratch of its own takes slot tp_self() of TP_MAX_THREADS. */
int tp_self(void);

/* Boundary k (0..nchunks) of [0, n) cut in nchunks chunks the way tp_for cuts it: for
 * work that makes its own pieces inside a job's chunks. */
int64_t tp_bound(int64_t n, int nchunks, int k);

/* tp_for over n whole items (blocks, images, pieces of sgemms) rather than elements:
 * fn(ctx, lo, hi) gets a run of items, at least `grain` of them (>= 1), cut from n, the
 * grain and the thread count alone. */
void tp_for_items(int64_t n, int64_t grain, tp_fn fn, void *ctx);
/* The same items claimed one by one as threads come free (several to a claim past
 * TP_EACH_CHUNKS a thread), as tp_for_each claims its chunks: for items of unequal cost
 * whose results do not depend on the thread that runs them. */
void tp_each_item(int64_t n, tp_fn fn, void *ctx);

/* A grain for tp_for_items: the fewest items of `per` elements each that hold `least`
 * elements, the work worth waking a second thread for (1 for items of none). */
int64_t tp_items_holding(int64_t least, int64_t per);

typedef double (*tp_sum_fn)(void *ctx, int64_t lo, int64_t hi);

/* fn(ctx, lo, hi) over blocks of `block` elements (more when n has over TP_SUM_BLOCKS of
 * them), summed in block order. */
enum { TP_SUM_BLOCKS = 256 };
double tp_sum(int64_t n, int64_t block, tp_sum_fn fn, void *ctx);

#endif
