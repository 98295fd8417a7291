/* blas.c — sgemm by OpenBLAS or by oneDNN, whichever the process chose (include/aigc/blas.h). */
#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef AIGC_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif

#include "aigc/blas.h"
#include "aigc/pool.h"

typedef void (*bk_sgemm_fn)(int, int, int, int, int, float, const float *, int, const float *,
                            int, float, float *, int);

static void openblas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                           const float *a, int lda, const float *b, int ldb, float beta, float *c,
                           int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#ifdef AIGC_ONEDNN
/* OpenMP's thread count is a per-thread setting, whose default is every core: each
 * thread that calls oneDNN sets its own to one, once. */
static _Thread_local int omp_single;

void bk_single_thread(void)
{
    if (!omp_single) {
        omp_set_num_threads(1);
        omp_single = 1;
    }
}

static void onednn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc)
{
    bk_single_thread();
    /* It fails only on arguments that the callers' shapes rule out. */
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda,
                                  b, ldb, beta, c, ldc);
    AG_ASSERT(st == dnnl_success);
}
#else
void bk_single_thread(void) {}
#endif

/* clear_first: OpenBLAS applies beta = 0 to C in a pass of its own, slower than the
 * caller's memset and beta = 1 (runtime/ops/linalg.c, sgemm_start); oneDNN's kernels
 * write C at once for beta = 0, and a cleared C would only be read back. */
static const struct {
    const char *name;
    bk_sgemm_fn sgemm; /* NULL: not in this build */
    int clear_first;
} backends[] = {
    [BK_OPENBLAS] = {"openblas", openblas_sgemm, 1},
#ifdef AIGC_ONEDNN
    [BK_ONEDNN] = {"onednn", onednn_sgemm, 0},
#else
    [BK_ONEDNN] = {"onednn", NULL, 0},
#endif
};
_Static_assert(AG_COUNTOF(backends) == BK_COUNT, "a backend without its row");

/* BK_COUNT until the first use reads AIGC_BACKEND, which may be on any pool thread. */
static _Atomic int current = BK_COUNT;

const char *bk_name(bk_backend b)
{
    AG_ASSERT(b >= 0 && b < BK_COUNT);
    return backends[b].name;
}

int bk_built(bk_backend b) { return b >= 0 && b < BK_COUNT && backends[b].sgemm != NULL; }

static bk_backend find(const char *name)
{
    for (int b = 0; b < BK_COUNT; b++)
        if (!strcmp(name, backends[b].name)) return (bk_backend)b;
    return BK_COUNT;
}

int bk_select(const char *name, ag_error *err)
{
    bk_backend b = find(name);
    if (b == BK_COUNT)
        return ag_errorf(err, (ag_loc){0}, "unknown backend '%s' (openblas or onednn)", name);
    if (!bk_built(b))
        return ag_errorf(err, (ag_loc){0},
                         "backend '%s' is not in this build (its library was not found when it was built)",
                         name);
    atomic_store(&current, b);
    return AG_OK;
}

bk_backend bk_current(void)
{
    if (atomic_load_explicit(&current, memory_order_relaxed) == BK_COUNT) {
        const char *env = getenv("AIGC_BACKEND");
        ag_error err;
        if (env && *env) {
            /* The command line checks it first and reports it; a test program does not. */
            if (bk_select(env, &err)) ag_assert_fail(__FILE__, __LINE__, err.msg);
        } else {
            atomic_store(&current, bk_built(BK_ONEDNN) ? BK_ONEDNN : BK_OPENBLAS);
        }
    }
    return (bk_backend)atomic_load_explicit(&current, memory_order_relaxed);
}

static void warm_piece(void *ctx, int64_t lo, int64_t hi)
{
    float a[16 * 16] = {0}, b[16 * 16] = {0}, c[16 * 16];
    bk_sgemm(0, 0, 16, 16, 16, 1.0f, a, 16, b, 16, 0.0f, c, 16);
}

void bk_warm(void)
{
    if (bk_current() == BK_ONEDNN) tp_aside(warm_piece, NULL);
}

int bk_clear_first(void) { return backends[bk_current()].clear_first; }

void bk_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    backends[bk_current()].sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
