/*
 * threads.h — an op at a given thread count, for the tests that hold the ops spread
 * over the pool to the bits they give on one thread.
 *
 * th_run builds the op on parameters of the given shapes, drawn uniformly from
 * [lo, hi), takes L = sum(y R) for a random R and runs a forward and a backward at
 * that many threads, twice, so that an op whose second pass reads what its first left
 * (its scratch, a buffer it adds into) shows it. It returns the output followed by
 * every parameter's gradient, in a new array of *len floats (NULL when the graph does
 * not build), and leaves the pool at one thread. The draws do not depend on the thread
 * count. th_agree runs it at two thread counts (or twice at one) and tells whether both
 * built and gave the same bits.
 */
#ifndef AIGC_THREADS_H
#define AIGC_THREADS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/graph.h"

enum { TH_MAX_IN = 4 };

typedef ag_node *(*th_build_fn)(ag_graph *g, ag_node **in, void *ctx);

static inline float *th_run(int threads, const ag_shape *shapes, int nin, float lo, float hi,
                            th_build_fn build, void *ctx, int64_t *len)
{
    AG_ASSERT(nin >= 1 && nin <= TH_MAX_IN);
    ag_set_threads(threads);
    ag_params ps;
    ag_params_init(&ps);
    int ip[TH_MAX_IN];
    char name[16];  /* "in" and any int: no truncation warning */
    for (int k = 0; k < nin; k++) {
        snprintf(name, sizeof name, "in%d", k);
        ip[k] = ag_params_add(&ps, name, shapes[k], (ag_loc){0});
    }
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 21);
    rng_fill_uniform(&r, ps.data, ps.total, lo, hi);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *in[TH_MAX_IN];
    for (int k = 0; k < nin; k++) in[k] = ag_param(&g, ip[k]);
    ag_node *y = build(&g, in, ctx);
    ag_node *rr = y ? ag_input(&g, "r", y->shape, 0) : NULL;
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, y, rr));
    ag_error err;
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, ip, nin, &err) : NULL;
    float *out = NULL;
    if (bw && ag_graph_plan(&g, 1, &err) == AG_OK) {
        int64_t ny = ag_numel(&y->shape);
        rng_fill_uniform(&r, rr->data, ny, -1, 1);
        for (int pass = 0; pass < 2; pass++) {
            ag_forward(&g, 0, g.n);
            ag_backward(&g, bw);
        }
        *len = ny + ps.total;
        out = ag_xmalloc((size_t)*len * sizeof *out);
        memcpy(out, y->data, (size_t)ny * sizeof *out);
        memcpy(out + ny, ps.grad, (size_t)ps.total * sizeof *out);
    }
    ag_graph_free(&g);
    ag_params_free(&ps);
    ag_set_threads(1);
    return out;
}

static inline int th_agree(int ta, int tb, const ag_shape *shapes, int nin, float lo, float hi,
                           th_build_fn build, void *ctx)
{
    int64_t na = 0, nb = 0;
    float *a = th_run(ta, shapes, nin, lo, hi, build, ctx, &na);
    float *b = th_run(tb, shapes, nin, lo, hi, build, ctx, &nb);
    int same = a && b && na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
    free(a);
    free(b);
    return same;
}

#endif
