/* backend_probe.c — OpenBLAS's cblas_sgemm against oneDNN's dnnl_sgemm at the shapes a
 * training step makes, on one thread and on each library's own threads, and the
 * accuracy of each against a float64 product.
 *
 *     backend_probe [-t THREADS] [-b BATCH] [-q SQUARE] NAME=W0,W1,...,Wn[+W0,...] ...
 *
 * The layer widths are sgemm_probe's (tests/bench/sgemm_probe.c): per linear layer
 * in -> out at batch B, the forward (M = B, N = out, K = in, B transposed), the input
 * gradient (M = B, N = in, K = out) and the weight gradient (M = out, N = in, K = B, A
 * transposed). Printed per sgemm, "key value..." lines:
 *
 *     gemm NAME WHAT M N K  blas1 dnnl1  blasT dnnlT  GFLOP/s  err-blas err-dnnl
 *
 * blas1 and dnnl1 run on the calling thread alone, blasT and dnnlT on THREADS threads of
 * the library's own (OpenBLAS's, OpenMP's). err is the largest |c - ref| / sum |a b|
 * over C, in units of float's epsilon: the error of the sum against its condition. Each
 * rate is the median of 5 rounds of at least 0.05 s.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "probe.h"

enum { MAX_GEMMS = 256 };

typedef struct gemm {
    int ta, tb, m, n, k;
    const char *what;
} gemm;

typedef enum lib { LIB_BLAS, LIB_DNNL } lib;

static float *buf_a, *buf_b, *buf_c;

static int lda_of(const gemm *g) { return g->ta ? g->m : g->k; }
static int ldb_of(const gemm *g) { return g->tb ? g->k : g->n; }

static void run(lib l, const gemm *g)
{
    if (l == LIB_BLAS) {
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                    g->m, g->n, g->k, 1.0f, buf_a, lda_of(g), buf_b, ldb_of(g), 0.0f, buf_c, g->n);
        return;
    }
    if (dnnl_sgemm(g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->m, g->n, g->k, 1.0f, buf_a, lda_of(g),
                   buf_b, ldb_of(g), 0.0f, buf_c, g->n) != dnnl_success) {
        fputs("backend_probe: dnnl_sgemm failed\n", stderr);
        exit(1);
    }
}

typedef struct one_gemm {
    lib l;
    const gemm *g;
} one_gemm;

static void run_one(void *ctx)
{
    const one_gemm *o = ctx;
    run(o->l, o->g);
}

/* GFLOP/s of g on `threads` threads of the library's own, in the median round. */
static double rate(lib l, const gemm *g, int threads)
{
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    double flops = 2.0 * g->m * g->n * g->k;
    run(l, g); /* the library's threads, and oneDNN's kernels for the shape */
    return flops / probe_seconds(run_one, &(one_gemm){l, g}, 0.05) * 1e-9;
}

/* max |c - ref| / sum |a b| over C, in epsilons, of one single-threaded run. */
static double error(lib l, const gemm *g)
{
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    run(l, g);
    int lda = lda_of(g), ldb = ldb_of(g);
    double worst = 0;
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            double s = 0, mag = 0;
            for (int p = 0; p < g->k; p++) {
                double av = g->ta ? buf_a[(size_t)p * lda + i] : buf_a[(size_t)i * lda + p];
                double bv = g->tb ? buf_b[(size_t)j * ldb + p] : buf_b[(size_t)p * ldb + j];
                s += av * bv;
                mag += fabs(av * bv);
            }
            double e = mag > 0 ? fabs(buf_c[(size_t)i * g->n + j] - s) / mag : 0;
            if (e > worst) worst = e;
        }
    return worst / FLT_EPSILON;
}

static void report(const char *name, int name_len, const gemm *g, int threads)
{
    printf("gemm %.*s %-7s %5d %5d %5d  %7.1f %7.1f  %7.1f %7.1f  GFLOP/s  %.3f %.3f\n", name_len, name,
           g->what, g->m, g->n, g->k, rate(LIB_BLAS, g, 1), rate(LIB_DNNL, g, 1),
           rate(LIB_BLAS, g, threads), rate(LIB_DNNL, g, threads), error(LIB_BLAS, g),
           error(LIB_DNNL, g));
}

#define USAGE "backend_probe [-t THREADS] [-b BATCH] [-q SQUARE] NAME=W0,W1,...,Wn ..."

int main(int argc, char **argv)
{
    int threads = 2, batch = 64, square = 1024;
    int argi = probe_options(argc, argv, USAGE, &threads, &batch, &square);
    size_t biggest = probe_biggest(argi, argc, argv, batch, square, USAGE);
    buf_a = malloc(biggest * sizeof(float));
    buf_b = malloc(biggest * sizeof(float));
    buf_c = malloc(biggest * sizeof(float));
    if (!buf_a || !buf_b || !buf_c) return perror("backend_probe"), 1;
    /* Values of both signs, so that the sums cancel as activations' and gradients' do. */
    unsigned x = 1;
    for (size_t i = 0; i < biggest; i++) {
        x = x * 1664525u + 1013904223u;
        buf_a[i] = (float)((int)(x >> 8 & 0xffff) - 0x8000) / 0x8000;
        x = x * 1664525u + 1013904223u;
        buf_b[i] = (float)((int)(x >> 8 & 0xffff) - 0x8000) / 0x8000;
    }
    printf("threads %d\nbatch %d\n", threads, batch);
    printf("columns: blas1 dnnl1 blas%d dnnl%d GFLOP/s, err-blas err-dnnl in float epsilons\n",
           threads, threads);
    for (int a = argi; a < argc; a++) {
        const char *name = argv[a], *eq = strchr(name, '=');
        int widths[2] = {0, 0}, nw = 0;
        for (const char *s = eq + 1; *s;) {
            char *end;
            int w = (int)strtol(s, &end, 10);
            if (nw == 2) widths[0] = widths[1], nw = 1;
            widths[nw++] = w;
            if (nw == 2) {
                int in = widths[0], out = widths[1];
                gemm gs[3] = {{0, 1, batch, out, in, "forward"}, {0, 0, batch, in, out, "input"},
                              {1, 0, out, in, batch, "weight"}};
                for (int i = 0; i < 3; i++) report(name, (int)(eq - name), &gs[i], threads);
            }
            if (*end == '+') nw = 0;
            s = *end ? end + 1 : end;
        }
    }
    gemm sq = {0, 0, square, square, square, "square"};
    report("square", 6, &sq, threads);
    free(buf_a);
    free(buf_b);
    free(buf_c);
    return 0;
}
