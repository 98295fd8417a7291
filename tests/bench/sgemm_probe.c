/* sgemm_probe.c — the runtime's sgemm throughput at a training step's shapes, the ceiling
 * that a training run's matrix products stay under (`make sgemm-probe`).
 *
 *     sgemm_probe [-t THREADS] [-b BATCH] [-q SQUARE] NAME=W0,W1,...,Wn[+W0,...] ...
 *
 * Each NAME=... is a set of MLPs by their layer widths, joined by '+' (the GAN's
 * generator and discriminator are gan=100,256,512,784+784,512,256,1). Per linear layer
 * in -> out at batch B (B rows), a training step makes three sgemms, in the dimension
 * letters of runtime/ops/linalg.c (C [M, N] = op(A) [M, K] op(B)):
 *
 *     forward  y  = x W^T     M = B,   N = out, K = in    (A plain, B transposed)
 *     input    dx = dy W      M = B,   N = in,  K = out   (both plain)
 *     weight   dW = dy^T x    M = out, N = in,  K = B     (A transposed)
 *
 * Each runs as training runs it: through the runtime's sgemm on THREADS threads of its
 * pool, which cuts it in pieces for single-threaded OpenBLAS (include/aigc/pool.h), a
 * layer's input gradient, alone and with the weight's, as its backward makes them
 * (ag_linear_backward: cut by W's rows where the forward cuts them, else side by side).
 * Printed: the rate of each, of each layer's two gradients, then per model the rate of
 * all its sgemms run back to back as a step runs them ("mix"), then a large square
 * sgemm (the BLAS's best case), cut by the pool ("square") and by OpenBLAS's own threads
 * ("square-blas"), since the ceiling is whichever is higher. Lines are "key value..." so
 * that a script can pick them out. Each figure is the median of 5 rounds of at least
 * 0.1 s, because other work on the machine makes single runs noisy.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/graph.h"
#include "probe.h"

enum { MAX_LAYERS = 32, MAX_GEMMS = 256 };

typedef struct gemm {
    int ta, tb, m, n, k;
    const char *what;
    int blas_threads; /* 0: the pool's split; else cblas_sgemm on this many of its threads */
} gemm;

/* Operands big enough for every gemm of the run, filled once with small values, and
 * the scratch of a layer's backward. */
static float *buf_a, *buf_b, *buf_c, *scratch;
static int64_t scratch_floats;

static ag_gemm args(const gemm *g, float *c)
{
    /* A weight gradient is cut by the weight's rows where the forward cuts them, as
     * runtime/ops/linalg.c's linear backward cuts it. */
    int weight = !strcmp(g->what, "weight");
    return (ag_gemm){g->ta, g->tb, g->m, g->n, g->k, 1.0f, buf_a, g->ta ? g->m : g->k,
                     buf_b, g->tb ? g->k : g->n, 0.0f, c, g->n, weight && g->m >= g->k};
}

/* Runs gs[0], or gs[0] and gs[1] when gs[0] is an input gradient and gs[1] its layer's
 * weight gradient, as the layer's backward runs them (each into its own half of C): an
 * input gradient, alone or with the weight's, through ag_linear_backward. Returns how
 * many it ran. */
static int run(const gemm *gs, int left)
{
    const gemm *g = gs;
    ag_gemm q = args(g, buf_c);
    if (g->blas_threads) {
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                    g->tb ? CblasTrans : CblasNoTrans, g->m, g->n, g->k, 1.0f, q.a, q.lda,
                    q.b, q.ldb, 0.0f, q.c, q.ldc);
        return 1;
    }
    if (strcmp(g->what, "input")) {
        ag_sgemm_pair(&q, NULL);
        return 1;
    }
    int rows = g->m, in = g->n, out = g->k, both = left >= 2 && !strcmp(gs[1].what, "weight");
    int64_t need = ag_linear_scratch(rows, in, out);
    if (need > scratch_floats) {
        free(scratch);
        scratch = malloc((size_t)need * sizeof *scratch);
        if (!scratch) {
            perror("sgemm_probe");
            exit(1);
        }
        scratch_floats = need;
    }
    ag_linear_backward(&(ag_linear_grads){.rows = rows, .in = in, .out = out, .dy = buf_a,
                                          .x = buf_b, .w = buf_b, .dx = buf_c,
                                          .dw = both ? buf_c + (size_t)rows * in : NULL,
                                          .assign = 3, .scratch = scratch,
                                          .scratch_floats = scratch_floats});
    return both ? 2 : 1;
}

static void run_all(const gemm *gs, int n)
{
    for (int i = 0; i < n;) i += run(gs + i, n - i);
}

typedef struct gemms {
    const gemm *gs;
    int n;
} gemms;

static void run_gemms(void *ctx)
{
    const gemms *g = ctx;
    run_all(g->gs, g->n);
}

/* GFLOP/s of running gemms [0, n) back to back, in the median round. */
static double rate(const gemm *gs, int n)
{
    double flops = 0;
    for (int i = 0; i < n; i++) flops += 2.0 * gs[i].m * gs[i].n * gs[i].k;
    run_all(gs, n); /* warm the caches and the BLAS threads */
    return flops / probe_seconds(run_gemms, &(gemms){gs, n}, 0.1) * 1e-9;
}

#define USAGE "sgemm_probe [-t THREADS] [-b BATCH] [-q SQUARE] NAME=W0,W1,...,Wn ..."

int main(int argc, char **argv)
{
    int threads = 1, batch = 64, square = 2048;
    int argi = probe_options(argc, argv, USAGE, &threads, &batch, &square);
    if (argi >= argc) probe_usage(USAGE);
    ag_set_threads(threads);
    printf("threads %d\nbatch %d\n", threads, batch);

    size_t biggest = probe_biggest(argi, argc, argv, batch, square, USAGE);
    int widths[MAX_LAYERS + 1];
    buf_a = malloc(biggest * sizeof(float));
    buf_b = malloc(biggest * sizeof(float));
    buf_c = malloc(2 * biggest * sizeof(float)); /* a layer's two gradients */
    if (!buf_a || !buf_b || !buf_c) return perror("sgemm_probe"), 1;
    for (size_t i = 0; i < biggest; i++) buf_a[i] = buf_b[i] = (float)(i % 7) * 0.01f;
    memset(buf_c, 0, 2 * biggest * sizeof(float));

    for (int a = argi; a < argc; a++) {
        const char *name = argv[a], *eq = strchr(name, '=');
        gemm gs[MAX_GEMMS];
        int ng = 0, nw = 0;
        for (const char *s = eq + 1; *s;) {
            char *end;
            if (nw > MAX_LAYERS || ng + 3 > MAX_GEMMS) probe_usage(USAGE);
            widths[nw++] = (int)strtol(s, &end, 10);
            if (nw >= 2) {
                int in = widths[nw - 2], out = widths[nw - 1];
                gs[ng++] = (gemm){0, 1, batch, out, in, "forward", 0};
                gs[ng++] = (gemm){0, 0, batch, in, out, "input", 0};
                gs[ng++] = (gemm){1, 0, out, in, batch, "weight", 0};
            }
            if (*end == '+') nw = 0; /* the next MLP */
            s = *end ? end + 1 : end;
        }
        if (ng == 0) probe_usage(USAGE);
        for (int i = 0; i < ng; i++) {
            printf("gemm %.*s %-7s M=%d N=%d K=%d %.2f GFLOP/s\n", (int)(eq - name), name,
                   gs[i].what, gs[i].m, gs[i].n, gs[i].k, rate(&gs[i], 1));
            if (!strcmp(gs[i].what, "weight"))
                printf("gemm %.*s input+weight as the backward %.2f GFLOP/s\n", (int)(eq - name),
                       name, rate(&gs[i - 1], 2));
        }
        printf("mix %.*s %.2f GFLOP/s\n", (int)(eq - name), name, rate(gs, ng));
    }
    gemm sq = {0, 0, square, square, square, "square", 0};
    printf("square %d %.2f GFLOP/s\n", square, rate(&sq, 1));
    /* OpenBLAS's own threads, which the runtime does not use (ag_set_threads left it at
     * one): last, since nothing runs after it. */
    openblas_set_num_threads(threads);
    sq.blas_threads = threads;
    printf("square-blas %d %.2f GFLOP/s\n", square, rate(&sq, 1));
    free(buf_a);
    free(buf_b);
    free(buf_c);
    free(scratch);
    return 0;
}
