/*
 * masked_linear.c — a linear layer whose weight is multiplied by a constant mask, as
 * MADE's masked layers: x [..., in], W [out, in], mask [out, in], b [out] (optional):
 *   y = x (W * mask)^T + b.
 * The mask takes no gradient, and W's gradient is masked: dW = (dy^T x) * mask.
 *
 * aux: the masked weight [out, in], made at each forward (the mask or W may change
 * between runs), then [out, in] scratch for the unmasked dW of backward.
 */
#include <string.h>

#include "aigc/graph.h"
#include "axis.h"

static int masked_linear_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0], *w = n->src[1], *mask = n->src[2];
    const ag_node *b = n->nsrc > 3 ? n->src[3] : NULL;
    if (x->shape.ndim < 1)
        return ag_errorf(err, n->loc, "masked_linear: the input must have a feature dimension, "
                         "got %s", AX_SHAPE(x));
    if (w->shape.ndim != 2)
        return ag_errorf(err, n->loc, "masked_linear: the weight must be 2-D [out, in], got %s",
                         AX_SHAPE(w));
    if (!ag_shape_eq(&mask->shape, &w->shape) || mask->batched)
        return ag_errorf(err, n->loc, "masked_linear: the mask has shape %s but the weight has "
                         "shape %s", AX_SHAPE(mask), AX_SHAPE(w));
    int in = x->shape.d[x->shape.ndim - 1], out = w->shape.d[0];
    if (in != w->shape.d[1])
        return ag_errorf(err, n->loc, "masked_linear: input has %d features but the weight "
                         "expects %d", in, w->shape.d[1]);
    if (b && (b->shape.ndim != 1 || b->shape.d[0] != out))
        return ag_errorf(err, n->loc, "masked_linear: the bias has shape %s but the weight has "
                         "%d outputs", AX_SHAPE(b), out);
    n->shape = x->shape;
    n->shape.d[n->shape.ndim - 1] = out;
    n->batched = x->batched && x->shape.ndim > 1;
    n->aux_numel = 2 * ag_numel(&w->shape);
    return AG_OK;
}

static void masked_linear_forward(ag_graph *g, ag_node *n)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    int in = w->shape.d[1], out = w->shape.d[0];
    int rows = (int)(ag_numel(&x->shape) / in);
    int64_t wn = (int64_t)out * in;
    float *wm = n->aux;
    for (int64_t k = 0; k < wn; k++) wm[k] = w->data[k] * n->src[2]->data[k];
    float beta = 0.0f;
    if (n->nsrc > 3) {
        for (int r = 0; r < rows; r++)
            memcpy(n->data + (int64_t)r * out, n->src[3]->data, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    ag_sgemm(0, 1, rows, out, in, 1.0f, x->data, in, wm, in, beta, n->data, out);
}

static void masked_linear_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    int in = w->shape.d[1], out = w->shape.d[0];
    int rows = (int)(ag_numel(&x->shape) / in);
    int64_t wn = (int64_t)out * in;
    const float *dy = n->grad, *wm = n->aux, *mask = n->src[2]->data;
    if (need & 1u) /* dx += dy (W * mask) */
        ag_sgemm(0, 0, rows, in, out, 1.0f, dy, out, wm, in, 1.0f, x->grad, in);
    if (need & 2u) { /* dW += (dy^T x) * mask */
        float *scratch = n->aux + wn;
        ag_sgemm(1, 0, out, in, rows, 1.0f, dy, out, x->data, in, 0.0f, scratch, in);
        for (int64_t k = 0; k < wn; k++) w->grad[k] += scratch[k] * mask[k];
    }
    if (need & 8u) {
        float *db = n->src[3]->grad;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < out; j++) db[j] += dy[(int64_t)r * out + j];
    }
}

const ag_op_def ag_def_masked_linear = {
    .name = "masked_linear", .min_src = 3, .max_src = 4, .infer = masked_linear_infer,
    .forward = masked_linear_forward, .backward = masked_linear_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_masked_linear(ag_graph *g, ag_node *x, ag_node *w, ag_node *mask, ag_node *b)
{
    return ag_new(g, AG_OP_MASKED_LINEAR, b ? 4 : 3, (ag_node *const[]){x, w, mask, b}, NULL,
                  NULL);
}
