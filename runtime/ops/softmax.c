/*
 * softmax.c — softmax and log_softmax along axis i[0].
 *
 * Both subtract the line's maximum before exponentiating, so no exp overflows, and
 * backward works from the output alone: with s = softmax(x),
 *   softmax:      dx = s * (dy - sum(dy * s))
 *   log_softmax:  dx = dy - s * sum(dy),   s = exp(y)
 */
#include <math.h>

#include "aigc/graph.h"
#include "axis.h"
#include "build.h"

static int sm_infer(ag_node *n, ag_error *err)
{
    int axis = ax_resolve(n, n->i[0], n->src[0], err);
    if (axis < 0) return AG_ERR;
    n->shape = n->src[0]->shape;
    n->batched = n->src[0]->batched;
    n->aux_numel = 0;
    return AG_OK;
}

/* One line along the axis: len values, stride apart. gy and gx are NULL in forward. */
typedef struct sm_line {
    int len;
    int64_t stride;
    const float *x, *gy;
    float *y, *gx;
} sm_line;

/* Calls fn on every line of node n along its axis. */
static void sm_each_line(ag_node *n, void (*fn)(const sm_line *l), int backward)
{
    const ag_shape *s = &n->shape;
    ax_view v = ax_view_of(s, ax_norm(n->i[0], s->ndim));
    for (int64_t o = 0; o < v.outer; o++)
        for (int64_t j = 0; j < v.inner; j++) {
            int64_t base = o * v.len * v.inner + j;
            sm_line l = {
                .len = v.len, .stride = v.inner,
                .x = n->src[0]->data + base, .y = n->data + base,
                .gy = backward ? n->grad + base : NULL,
                .gx = backward ? n->src[0]->grad + base : NULL,
            };
            fn(&l);
        }
}

static float sm_max(const sm_line *l)
{
    float m = l->x[0];
    for (int k = 1; k < l->len; k++) m = fmaxf(m, l->x[k * l->stride]);
    return m;
}

static void softmax_line(const sm_line *l)
{
    float m = sm_max(l), s = 0;
    for (int k = 0; k < l->len; k++) {
        float e = expf(l->x[k * l->stride] - m);
        l->y[k * l->stride] = e;
        s += e;
    }
    for (int k = 0; k < l->len; k++) l->y[k * l->stride] /= s;
}

static void softmax_grad_line(const sm_line *l)
{
    float dot = 0;
    for (int k = 0; k < l->len; k++) dot += l->gy[k * l->stride] * l->y[k * l->stride];
    for (int k = 0; k < l->len; k++) {
        int64_t at = k * l->stride;
        l->gx[at] += l->y[at] * (l->gy[at] - dot);
    }
}

static void log_softmax_line(const sm_line *l)
{
    float m = sm_max(l), s = 0;
    for (int k = 0; k < l->len; k++) s += expf(l->x[k * l->stride] - m);
    /* (x - m) - log s, not x - (m + log s): m + log s would round at m's magnitude. */
    float log_s = logf(s);
    for (int k = 0; k < l->len; k++) l->y[k * l->stride] = l->x[k * l->stride] - m - log_s;
}

static void log_softmax_grad_line(const sm_line *l)
{
    float sum = 0;
    for (int k = 0; k < l->len; k++) sum += l->gy[k * l->stride];
    for (int k = 0; k < l->len; k++) {
        int64_t at = k * l->stride;
        l->gx[at] += l->gy[at] - expf(l->y[at]) * sum;
    }
}

static void softmax_forward(ag_graph *g, ag_node *n) { sm_each_line(n, softmax_line, 0); }
static void softmax_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (need & 1u) sm_each_line(n, softmax_grad_line, 1);
}

static void log_softmax_forward(ag_graph *g, ag_node *n)
{
    sm_each_line(n, log_softmax_line, 0);
}
static void log_softmax_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (need & 1u) sm_each_line(n, log_softmax_grad_line, 1);
}

const ag_op_def ag_def_softmax = {.name = "softmax", .min_src = 1, .max_src = 1,
                                  .infer = sm_infer, .forward = softmax_forward,
                                  .backward = softmax_backward};
const ag_op_def ag_def_log_softmax = {.name = "log_softmax", .min_src = 1, .max_src = 1,
                                      .infer = sm_infer, .forward = log_softmax_forward,
                                      .backward = log_softmax_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_softmax(ag_graph *g, ag_node *x, int axis) { return bd_new1(g, AG_OP_SOFTMAX, x, NULL, BD_I(axis)); }

ag_node *ag_log_softmax(ag_graph *g, ag_node *x, int axis)
{
    return bd_new1(g, AG_OP_LOG_SOFTMAX, x, NULL, BD_I(axis));
}
