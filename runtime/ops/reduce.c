/*
 * reduce.c — sums and means: of a whole tensor to a 0-d scalar, or along one axis.
 * The mean ops are the sum ops scaled by 1 / (count summed), so each pair shares code.
 */
#include <string.h>

#include "aigc/graph.h"
#include "axis.h"
#include "build.h"

/* ---- sum, mean: everything to a scalar ------------------------------------------ */

static int all_infer(ag_node *n, ag_error *err)
{
    n->shape = ag_shape0();
    n->batched = 0;
    n->aux_numel = 0;
    return AG_OK;
}

/* 1 for sum, 1 / numel for mean: the count follows the batch at each call (the whole
 * batch's, in a shard). */
static float all_scale(const ag_graph *g, const ag_node *n)
{
    return n->op == AG_OP_MEAN ? 1.0f / (float)ag_mean_count(g, n->src[0], ag_numel(&n->src[0]->shape)) : 1.0f;
}

static void all_forward(ag_graph *g, ag_node *n)
{
    const float *x = n->src[0]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    /* A loss sums tens of thousands of terms: double keeps the total exact enough. */
    double s = 0;
    for (int64_t k = 0; k < len; k++) s += x[k];
    n->data[0] = (float)(s * all_scale(g, n));
}

static void all_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    float *gx = n->src[0]->grad, gy = n->grad[0] * all_scale(g, n);
    int64_t len = ag_numel(&n->src[0]->shape);
    for (int64_t k = 0; k < len; k++) gx[k] += gy;
}

const ag_op_def ag_def_sum = {.name = "sum", .min_src = 1, .max_src = 1, .infer = all_infer,
                              .forward = all_forward, .backward = all_backward};
const ag_op_def ag_def_mean = {.name = "mean", .min_src = 1, .max_src = 1, .infer = all_infer,
                               .forward = all_forward, .backward = all_backward};

/* ---- sum_axis, mean_axis: along axis i[0], keepdim i[1] ------------------------- */

/* Reducing axis 0 of a batched tensor sums over the batch: the result has no batch. */
static int axis_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    int axis = ax_resolve(n, n->i[0], x, err);
    if (axis < 0) return AG_ERR;
    n->shape = x->shape;
    if (n->i[1]) {
        n->shape.d[axis] = 1;
    } else {
        memmove(&n->shape.d[axis], &n->shape.d[axis + 1],
                (size_t)(x->shape.ndim - axis - 1) * sizeof n->shape.d[0]);
        n->shape.ndim--;
    }
    n->batched = x->batched && axis != 0;
    n->aux_numel = 0;
    return AG_OK;
}

static ax_view axis_view(const ag_node *n)
{
    const ag_shape *s = &n->src[0]->shape;
    return ax_view_of(s, ax_norm(n->i[0], s->ndim));
}

/* Axis 0 of a batched tensor is the batch: the whole batch's, in a shard. */
static float axis_scale(const ag_graph *g, const ag_node *n, ax_view v)
{
    if (n->op != AG_OP_MEAN_AXIS) return 1.0f;
    int batch_axis = ax_norm(n->i[0], n->src[0]->shape.ndim) == 0;
    return 1.0f / (float)(batch_axis ? ag_mean_count(g, n->src[0], v.len) : v.len);
}

/* y[o, j] = scale * sum_k x[o, k, j]; rows of x are added whole so the loop runs over
 * contiguous memory whatever the axis. */
static void axis_forward(ag_graph *g, ag_node *n)
{
    ax_view v = axis_view(n);
    float scale = axis_scale(g, n, v);
    const float *x = n->src[0]->data;
    for (int64_t o = 0; o < v.outer; o++) {
        float *y = n->data + o * v.inner;
        memset(y, 0, (size_t)v.inner * sizeof *y);
        for (int k = 0; k < v.len; k++) {
            const float *xr = x + (o * v.len + k) * v.inner;
            for (int64_t j = 0; j < v.inner; j++) y[j] += xr[j];
        }
        for (int64_t j = 0; j < v.inner; j++) y[j] *= scale;
    }
}

static void axis_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    ax_view v = axis_view(n);
    float scale = axis_scale(g, n, v);
    float *gx = n->src[0]->grad;
    for (int64_t o = 0; o < v.outer; o++) {
        const float *gy = n->grad + o * v.inner;
        for (int k = 0; k < v.len; k++) {
            float *gr = gx + (o * v.len + k) * v.inner;
            for (int64_t j = 0; j < v.inner; j++) gr[j] += scale * gy[j];
        }
    }
}

const ag_op_def ag_def_sum_axis = {.name = "sum_axis", .min_src = 1, .max_src = 1,
                                   .infer = axis_infer, .forward = axis_forward,
                                   .backward = axis_backward};
const ag_op_def ag_def_mean_axis = {.name = "mean_axis", .min_src = 1, .max_src = 1,
                                    .infer = axis_infer, .forward = axis_forward,
                                    .backward = axis_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_sum(ag_graph *g, ag_node *x) { return bd_new1(g, AG_OP_SUM, x, NULL, NULL); }
ag_node *ag_mean(ag_graph *g, ag_node *x) { return bd_new1(g, AG_OP_MEAN, x, NULL, NULL); }

ag_node *ag_sum_axis(ag_graph *g, ag_node *x, int axis, int keepdim)
{
    return bd_new1(g, AG_OP_SUM_AXIS, x, NULL, BD_I(axis, keepdim));
}

ag_node *ag_mean_axis(ag_graph *g, ag_node *x, int axis, int keepdim)
{
    return bd_new1(g, AG_OP_MEAN_AXIS, x, NULL, BD_I(axis, keepdim));
}
