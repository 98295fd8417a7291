/*
 * dist.h — data-parallel training over MPI (prefix dp_): the only module that knows MPI.
 *
 * Launched by mpirun (Open MPI), each of N processes (ranks) holds the whole model and
 * runs the whole program on its share of every batch; the gradients are summed across
 * ranks before each update, so every rank applies the same one. Launched plainly, there
 * is one rank and every call below is the identity: libmpi is not even loaded. It is
 * opened with dlopen only when mpirun's variables are in the environment, which keeps
 * a plain start (`aigc-run check`) free of MPI's start-up, and the build free of MPI.
 *
 *     if (dp_init()) ...                      // from main, before anything else
 *     float g[n];  ...                        // each rank's partial sums
 *     dp_sum_f32(g, n);                       // now the sums over every rank
 *     if (dp_rank() == 0) write_checkpoint(); // one writer
 *     dp_finalize();
 *
 * Errors: MPI's own are fatal (its default handler ends the job). A rank whose run
 * fails on its own calls dp_abort, which ends every rank; a failure every rank reached
 * together (see dp_set_shared_error) ends them normally. docs/scaling.md has the rest.
 */
#ifndef AIGC_DIST_H
#define AIGC_DIST_H

#include <stdint.h>

#include "aigc/base.h"

/* Joins the job when launched by mpirun; AG_ERR, with a message, when libmpi cannot be
 * loaded or initialized. A rank other than 0 sends its stdout to /dev/null: results
 * are rank 0's. */
int dp_init(ag_error *err);
/* Leaves the job (MPI_Finalize); nothing to do without one. */
void dp_finalize(void);
int dp_rank(void);
int dp_size(void);

/* In place, on every rank: x becomes the sum of every rank's x (MPI_Allreduce). */
void dp_sum_f32(float *x, int64_t n);
/* Rank 0's x, on every rank (MPI_Bcast). */
void dp_bcast_f64(double *x, int64_t n);

/* Rows [*lo, *lo + *n) of a batch of `batch` rows are this rank's share: as even as
 * rows allow, in rank order. */
void dp_share(int batch, int *lo, int *n);

/* The error that ends this process ends the job: prints msg (prefixed with the rank
 * unless it is 0) and calls MPI_Abort. A rank other than 0 waits a moment first, so
 * that when every rank fails alike, rank 0's message is the one shown. */
_Noreturn void dp_abort(const char *msg);
/* The run stopped on a decision every rank took together (an interrupt, divergence):
 * the ranks may end normally, rank 0 alone reporting it. */
void dp_set_shared_error(void);
int dp_shared_error(void);

#endif
