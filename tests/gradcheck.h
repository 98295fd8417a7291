/*
 * gradcheck.h — the generic finite-difference gradient check every op goes through.
 *
 * A case names its inputs (shape, value range, whether they take a gradient) and a
 * function that builds the op's output from them. The check makes the loss
 * L = sum(out * R) for a fixed random R, takes the analytic gradient of every
 * differentiable input with one ag_backward, and compares it element by element with
 * the central difference (L(x + h) - L(x - h)) / 2h, L summed in double.
 *
 * With AIGC_GRADCOV naming a file, each check appends to it the name of every op whose
 * backward it ran (the case's own nodes, not the loss built around them), one a line:
 * tests/test_grad_coverage.c runs the programs that include this header that way and
 * fails for any op of the table with a backward that no check reached.
 */
#ifndef AIGC_GRADCHECK_H
#define AIGC_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "aigc/graph.h"
#include "tap.h"

enum { GC_MAX_IN = 4 };

typedef struct gc_input {
    ag_shape shape;
    float lo, hi;     /* values drawn uniformly from [lo, hi) */
    int integer;      /* values rounded down to integers (indices); takes no gradient */
    int no_grad;      /* a plain input: no gradient is checked */
} gc_input;

typedef ag_node *(*gc_build_fn)(ag_graph *g, ag_node **in, void *ctx);

typedef struct gc_opts {
    float h;          /* step; default 1e-2 */
    float atol, rtol; /* defaults 2e-3, 2e-2 */
    uint64_t seed;
} gc_opts;

static inline double gc_loss(ag_graph *g, ag_node *out, const float *r)
{
    ag_forward(g, 0, g->n);
    double s = 0;
    int64_t n = ag_numel(&out->shape);
    for (int64_t k = 0; k < n; k++) s += (double)out->data[k] * r[k];
    return s;
}

/* The ops of the case's nodes (ids up to out's) that the backward plan calls. */
static inline void gc_record(const ag_bwplan *bw, const ag_node *out)
{
    const char *path = getenv("AIGC_GRADCOV");
    if (!path || !bw) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    for (int k = 0; k < bw->nsteps; k++)
        if (bw->steps[k].node->id <= out->id)
            fprintf(f, "%s\n", ag_op_defs[bw->steps[k].node->op]->name);
    fclose(f);
}

/* One TAP line per case: ok when every gradient element matches. */
static inline int gc_check_opts(const char *name, int nin, const gc_input *in, gc_build_fn build,
                         void *ctx, gc_opts o)
{
    if (o.h == 0) o.h = 1e-2f;
    if (o.atol == 0) o.atol = 2e-3f;
    if (o.rtol == 0) o.rtol = 2e-2f;
    rng r;
    rng_seed(&r, o.seed ? o.seed : 1234);
    ag_params ps;
    ag_params_init(&ps);
    int pidx[GC_MAX_IN] = {0}, np = 0;
    for (int k = 0; k < nin; k++) {
        if (in[k].integer || in[k].no_grad) continue;
        char pname[16];
        snprintf(pname, sizeof pname, "in%d", k);
        pidx[k] = ag_params_add(&ps, pname, in[k].shape, (ag_loc){0});
        np++;
    }
    ag_params_alloc(&ps);

    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    g.reuse = 1; /* the training step's layout: gradients share buffers by lifetime */
    ag_node *nodes[GC_MAX_IN];
    for (int k = 0; k < nin; k++) {
        if (in[k].integer || in[k].no_grad)
            nodes[k] = ag_input(&g, "in", in[k].shape, 0);
        else
            nodes[k] = ag_param(&g, pidx[k]);
    }
    ag_node *out = build(&g, nodes, ctx);
    if (!out) {
        ok(0, "gradcheck %s: build failed: %s", name, g.err.msg);
        ag_graph_free(&g);
        ag_params_free(&ps);
        return 0;
    }
    ag_node *rw = ag_input(&g, "r", out->shape, 0);
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, out, rw));
    int list[GC_MAX_IN], nl = 0;
    for (int k = 0; k < nin; k++)
        if (!in[k].integer && !in[k].no_grad) list[nl++] = pidx[k];
    ag_error err;
    ag_bwplan *bw = nl ? ag_backward_plan(&g, loss, list, nl, &err) : NULL;
    if ((nl && !bw) || ag_graph_plan(&g, 1, &err)) {
        ok(0, "gradcheck %s: plan failed: %s", name, err.msg);
        ag_graph_free(&g);
        ag_params_free(&ps);
        return 0;
    }
    for (int k = 0; k < nin; k++) {
        float *x = nodes[k]->data;
        int64_t n = ag_numel(&in[k].shape);
        for (int64_t j = 0; j < n; j++) {
            float v = in[k].lo + (in[k].hi - in[k].lo) * rng_uniform(&r);
            x[j] = in[k].integer ? floorf(v) : v;
        }
    }
    rng_fill_normal(&r, rw->data, ag_numel(&rw->shape), 0, 1);

    /* Random leaves inside the op (dropout) must draw the same values at every
     * evaluation: restart the generator from one state each time. */
    rng saved = r;
    ag_forward(&g, 0, g.n);
    /* A second pass with NaN in the inputs' gradients, as a training step's shared
     * buffers hold another gradient's values there: an op that neither writes a
     * gradient outright (AG_DEF_BW_ASSIGN) nor has it zeroed by the plan fails. */
    for (int pass = 0; bw && pass < 2; pass++) {
        for (int k = 0; pass && k < nin; k++)
            if (!in[k].integer && !in[k].no_grad)
                for (int64_t j = 0; j < ag_numel(&in[k].shape); j++) nodes[k]->grad[j] = NAN;
        ag_backward(&g, bw);
    }
    int good = 1;
    double worst = 0;
    for (int k = 0; k < nin && good; k++) {
        if (in[k].integer || in[k].no_grad) continue;
        float *x = nodes[k]->data, *gx = nodes[k]->grad;
        int64_t n = ag_numel(&in[k].shape);
        for (int64_t j = 0; j < n; j++) {
            float keep = x[j];
            x[j] = keep + o.h;
            r = saved;
            double lp = gc_loss(&g, out, rw->data);
            x[j] = keep - o.h;
            r = saved;
            double lm = gc_loss(&g, out, rw->data);
            x[j] = keep;
            double num = (lp - lm) / (2.0 * o.h);
            double err_abs = fabs(num - gx[j]);
            if (err_abs > worst) worst = err_abs;
            if (!tap_close(gx[j], num, o.atol, o.rtol)) {
                diag("%s: input %d element %lld: analytic %.6g, numeric %.6g", name, k,
                     (long long)j, gx[j], num);
                good = 0;
                break;
            }
        }
    }
    ok(good, "gradcheck %s (worst abs error %.2g)", name, worst);
    if (good) gc_record(bw, out);
    ag_graph_free(&g);
    ag_params_free(&ps);
    return good;
}

static inline int gc_check(const char *name, int nin, const gc_input *in, gc_build_fn build,
                    void *ctx)
{
    return gc_check_opts(name, nin, in, build, ctx, (gc_opts){0});
}

#endif
