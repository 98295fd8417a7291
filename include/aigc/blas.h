/*
 * blas.h — the compute library behind the engine's matrix products (prefix bk_):
 * OpenBLAS or oneDNN, one choice for the whole process.
 *
 *     ag_error err;
 *     if (bk_select("openblas", &err)) ...        // --backend openblas
 *     bk_sgemm(0, 1, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);   // y = x w^T
 *
 * bk_sgemm is C = alpha op(A) op(B) + beta C on row-major matrices (the BLAS's sgemm),
 * run whole on the calling thread: the pool (include/aigc/pool.h) cuts the products in
 * pieces, and no library thread runs beside it. OpenBLAS's threads are kept at one by
 * ag_set_threads; oneDNN's are OpenMP's, kept at one on each thread that calls it, so
 * that N threads in all means N. On one thread each library gives the same bits on
 * every rerun; the two round differently.
 *
 * The choice starts as the environment's AIGC_BACKEND (the tests run on each backend
 * through it), else oneDNN when the build has it (about twice OpenBLAS's rate at batch
 * 64 on an AVX-512 machine, tests/bench/backend_probe.c), else OpenBLAS.
 */
#ifndef AIGC_BLAS_H
#define AIGC_BLAS_H

#include "aigc/base.h"

typedef enum bk_backend { BK_OPENBLAS, BK_ONEDNN, BK_COUNT } bk_backend;

/* "openblas", "onednn". */
const char *bk_name(bk_backend b);
/* Whether this build has b. */
int bk_built(bk_backend b);
/* Uses the backend called name from now on; an unknown name, or one this build lacks,
 * is the caller's user's mistake. */
int bk_select(const char *name, ag_error *err);
bk_backend bk_current(void);

void bk_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* Readies the current library for its first product without making the caller wait:
 * oneDNN makes its sgemm kernels at its first call (40 ms on the reference machine),
 * which a small product aside on a pool worker (tp_aside) does while the caller loads
 * a run. */
void bk_warm(void);
/* Whether the current library runs beta = 0 faster as C cleared by the caller and
 * beta = 1 (OpenBLAS) than as it is (oneDNN). Either way C's old values leave no trace. */
int bk_clear_first(void);

/* oneDNN runs on the calling thread alone from now on: for the callers of its other
 * primitives (runtime/ops/conv_onednn.c), before they make or run one. */
void bk_single_thread(void);

#endif
