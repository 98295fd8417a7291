/* dropout.c — inverted dropout, as torch.nn.Dropout: while training, each element is
 * zeroed with probability p and the kept ones are scaled by 1 / (1 - p), so that
 * evaluation is the identity. The mask, holding 0 or that scale, is kept in aux for
 * the backward. The graph must not switch between training and evaluation between a
 * forward and its backward. */
#include <string.h>

#include "aigc/graph.h"
#include "build.h"

static int dropout_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    if (!(n->f[0] >= 0 && n->f[0] <= 1))
        return ag_errorf(err, n->loc, "dropout: p = %g is outside [0, 1]", n->f[0]);
    n->shape = x->shape;
    n->batched = x->batched;
    n->aux_numel = ag_numel(&x->shape);
    return AG_OK;
}

static void dropout_forward(ag_graph *g, ag_node *n)
{
    const float *x = n->src[0]->data;
    int64_t len = ag_numel(&n->shape);
    if (!g->training) {
        memcpy(n->data, x, (size_t)len * sizeof(float));
        return;
    }
    float p = n->f[0], scale = p < 1 ? 1 / (1 - p) : 0;
    int64_t before, after;
    ag_shard_draws(g, n, &before, &after);
    rng_skip_uniform(g->rng, before);
    for (int64_t k = 0; k < len; k++) {
        n->aux[k] = rng_uniform(g->rng) < p ? 0.0f : scale;
        n->data[k] = x[k] * n->aux[k];
    }
    rng_skip_uniform(g->rng, after);
}

static void dropout_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const float *dy = n->grad;
    float *dx = n->src[0]->grad;
    int64_t len = ag_numel(&n->shape);
    if (!g->training) {
        for (int64_t k = 0; k < len; k++) dx[k] += dy[k];
        return;
    }
    for (int64_t k = 0; k < len; k++) dx[k] += dy[k] * n->aux[k];
}

const ag_op_def ag_def_dropout = {.name = "dropout", .min_src = 1, .max_src = 1,
                                  .infer = dropout_infer, .forward = dropout_forward,
                                  .backward = dropout_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_dropout(ag_graph *g, ag_node *x, float p) { return bd_new1(g, AG_OP_DROPOUT, x, BD_F(p), NULL); }
