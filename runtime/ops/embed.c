/*
 * embed.c — embeddings: rows of a learned table picked by index, and the fixed
 * sinusoidal embedding of a diffusion timestep.
 */
#include <math.h>
#include <string.h>

#include "aigc/graph.h"
#include "axis.h"
#include "build.h"

/* -------------------------------------------------------------- embedding -- */

/* weight [V, D], indices [...] as floats holding integers -> [..., D], as
 * torch.nn.functional.embedding(indices, weight). The indices take no gradient. */

static int embedding_infer(ag_node *n, ag_error *err)
{
    const ag_node *w = n->src[0], *ix = n->src[1];
    if (w->shape.ndim != 2)
        return ag_errorf(err, n->loc, "embedding: the weight must be 2-D [V, D], got %s",
                         AX_SHAPE(w));
    if (ix->shape.ndim == AG_MAX_DIMS)
        return ag_errorf(err, n->loc, "embedding: the indices %s leave no room for the %d-wide "
                         "embedding dimension", AX_SHAPE(ix), w->shape.d[1]);
    n->shape = ix->shape;
    n->shape.d[n->shape.ndim++] = w->shape.d[1];
    n->batched = ix->batched;
    n->aux_numel = 0;
    return AG_OK;
}

static void embedding_forward(ag_graph *g, ag_node *n)
{
    const float *ix = n->src[1]->data, *w = n->src[0]->data;
    int64_t count = ag_numel(&n->src[1]->shape);
    int v = n->src[0]->shape.d[0], d = n->src[0]->shape.d[1];
    for (int64_t k = 0; k < count; k++) {
        float i = ix[k];
        if (!(i >= 0 && i < v) || i != floorf(i)) {
            ag_fail(g, n, "embedding: index %g at element %lld is not a row index in [0, %d)",
                    i, (long long)k, v);
            return;
        }
        memcpy(n->data + k * d, w + (int64_t)i * d, (size_t)d * sizeof(float));
    }
}

/* The forward checked every index; a repeated index sums its rows' gradients. */
static void embedding_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    const float *ix = n->src[1]->data;
    int64_t count = ag_numel(&n->src[1]->shape);
    int d = n->src[0]->shape.d[1];
    for (int64_t k = 0; k < count; k++) {
        float *dw = n->src[0]->grad + (int64_t)ix[k] * d;
        const float *dy = n->grad + k * d;
        for (int j = 0; j < d; j++) dw[j] += dy[j];
    }
}

const ag_op_def ag_def_embedding = {.name = "embedding", .min_src = 2, .max_src = 2,
                                    .infer = embedding_infer, .forward = embedding_forward,
                                    .backward = embedding_backward};

/* ---------------------------------------------------- timestep_embedding -- */

/* t [N] -> [N, dim]: with half = dim / 2 and freq_k = exp(-ln(10000) * k / half),
 * row n is [sin(t_n freq_0), ..., sin(t_n freq_{half-1}), cos(t_n freq_0), ...], and a
 * zero column last when dim is odd. The transformer's positional encoding; DDPM's code
 * divides by half - 1 instead, improved-diffusion's by half but puts cos first. The
 * products are float, as PyTorch computes them, so that large t give the same angles. */

static int timestep_embedding_infer(ag_node *n, ag_error *err)
{
    const ag_node *t = n->src[0];
    if (t->shape.ndim != 1)
        return ag_errorf(err, n->loc, "timestep_embedding: the timesteps must be 1-D [N], got %s",
                         AX_SHAPE(t));
    if (n->i[0] < 2)
        return ag_errorf(err, n->loc, "timestep_embedding: the dimension must be at least 2, "
                         "got %d", n->i[0]);
    n->shape = ag_shape2(t->shape.d[0], n->i[0]);
    n->batched = t->batched;
    n->aux_numel = 0;
    return AG_OK;
}

static void timestep_embedding_forward(ag_graph *g, ag_node *n)
{
    int dim = n->i[0], half = dim / 2;
    int64_t rows = n->shape.d[0];
    const float step = (float)-log(10000.0);
    for (int64_t r = 0; r < rows; r++) {
        float t = n->src[0]->data[r], *y = n->data + r * dim;
        for (int k = 0; k < half; k++) {
            float arg = t * expf(step * (float)k / (float)half);
            y[k] = sinf(arg);
            y[half + k] = cosf(arg);
        }
        if (dim % 2) y[dim - 1] = 0.0f;
    }
}

const ag_op_def ag_def_timestep_embedding = {
    .name = "timestep_embedding", .min_src = 1, .max_src = 1, .flags = AG_DEF_NO_GRAD,
    .infer = timestep_embedding_infer, .forward = timestep_embedding_forward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_embedding(ag_graph *g, ag_node *weight, ag_node *index)
{
    return bd_new2(g, AG_OP_EMBEDDING, weight, index, NULL, NULL);
}

ag_node *ag_timestep_embedding(ag_graph *g, ag_node *t, int dim)
{
    return bd_new1(g, AG_OP_TIMESTEP_EMBEDDING, t, NULL, BD_I(dim));
}
