/* spectral.c — spectral normalization of a weight, torch.nn.utils.spectral_norm's
 * (Miyato et al., 2018) with one power iteration.
 *
 * Sources: W [O, ...], read as the matrix [O, I] of its rows (I the product of the other
 * dims: a linear layer's [out, in], a convolution's [out, in * kH * kW]), and the
 * buffers u [O] and v [I]; eps f[0]. The output is W / sigma, sigma = u . (W v), the
 * estimate of W's largest singular value.
 *
 * While the graph is training, each forward first takes one step of the power method
 * and writes it back into the buffers, as PyTorch's pre-forward hook does:
 *   v = normalize(W^T u),  u = normalize(W v),   normalize(x) = x / max(|x|, eps);
 * evaluation uses the buffers as they are. Each application of a layer is a node of
 * its own, so a model called twice in a step iterates twice, as two PyTorch forwards
 * would. The gradient holds u and v constant (PyTorch clones them out of the graph):
 *   dW += G / sigma - (sum(G * W) / sigma^2) u v^T,   G the output's gradient.
 * aux: the u and v of this forward (a later node of the same layer overwrites the
 * buffers before this one's backward runs), then sigma. The buffers get no gradient. */
#include <math.h>

#include "aigc/graph.h"
#include "axis.h"
#include "build.h"

typedef struct sn_dims {
    int64_t rows, cols;
} sn_dims;

static sn_dims sn_dims_of(const ag_node *n)
{
    const ag_shape *s = &n->src[0]->shape;
    return (sn_dims){s->d[0], ag_numel(s) / s->d[0]};
}

static int spectral_norm_infer(ag_node *n, ag_error *err)
{
    const ag_node *w = n->src[0], *u = n->src[1], *v = n->src[2];
    if (w->shape.ndim < 2 || w->batched)
        return ag_errorf(err, n->loc, "spectral_norm: the weight must be a matrix [O, ...], got %s", AX_SHAPE(w));
    sn_dims d = sn_dims_of(n);
    if (u->shape.ndim != 1 || u->shape.d[0] != d.rows || v->shape.ndim != 1 || v->shape.d[0] != d.cols)
        return ag_errorf(err, n->loc, "spectral_norm: u must be [%lld] and v [%lld], got %s and %s",
                         (long long)d.rows, (long long)d.cols, AX_SHAPE(u), AX_SHAPE(v));
    n->shape = w->shape;
    n->batched = 0;
    n->aux_numel = d.rows + d.cols + 1;
    return AG_OK;
}

/* x / max(|x|, eps), the norm in double; returns |x|^2 / max(|x|, eps), which for
 * x = W v is u . (W v) with u the normalized x. */
static double sn_normalize(float *x, int64_t n, float eps)
{
    double ss = 0;
    for (int64_t k = 0; k < n; k++) ss += (double)x[k] * x[k];
    float norm = (float)sqrt(ss);
    float denom = norm > eps ? norm : eps;
    for (int64_t k = 0; k < n; k++) x[k] /= denom;
    return ss / denom;
}

static void spectral_norm_forward(ag_graph *g, ag_node *n)
{
    sn_dims d = sn_dims_of(n);
    const float *w = n->src[0]->data;
    float *u = n->aux, *v = n->aux + d.rows, eps = n->f[0];
    double sigma = 0; /* u . (W v) */
    if (g->training) {
        const float *u0 = n->src[1]->data;
        for (int64_t j = 0; j < d.cols; j++) v[j] = 0;
        for (int64_t i = 0; i < d.rows; i++) /* v = W^T u */
            for (int64_t j = 0; j < d.cols; j++) v[j] += w[i * d.cols + j] * u0[i];
        sn_normalize(v, d.cols, eps);
        for (int64_t i = 0; i < d.rows; i++) { /* u = W v */
            double s = 0;
            for (int64_t j = 0; j < d.cols; j++) s += (double)w[i * d.cols + j] * v[j];
            u[i] = (float)s;
        }
        sigma = sn_normalize(u, d.rows, eps); /* W v is the u just normalized */
        for (int64_t i = 0; i < d.rows; i++) n->src[1]->data[i] = u[i];
        for (int64_t j = 0; j < d.cols; j++) n->src[2]->data[j] = v[j];
    } else {
        for (int64_t i = 0; i < d.rows; i++) u[i] = n->src[1]->data[i];
        for (int64_t j = 0; j < d.cols; j++) v[j] = n->src[2]->data[j];
        for (int64_t i = 0; i < d.rows; i++) {
            double s = 0;
            for (int64_t j = 0; j < d.cols; j++) s += (double)w[i * d.cols + j] * v[j];
            sigma += (double)u[i] * (float)s;
        }
    }
    float sg = (float)sigma;
    n->aux[d.rows + d.cols] = sg;
    for (int64_t k = 0; k < d.rows * d.cols; k++) n->data[k] = w[k] / sg;
}

static void spectral_norm_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    sn_dims d = sn_dims_of(n);
    const float *w = n->src[0]->data, *u = n->aux, *v = n->aux + d.rows, *gy = n->grad;
    float sigma = n->aux[d.rows + d.cols], *gw = n->src[0]->grad;
    double gdotw = 0;
    for (int64_t k = 0; k < d.rows * d.cols; k++) gdotw += (double)gy[k] * w[k];
    float c = (float)(gdotw / ((double)sigma * sigma));
    for (int64_t i = 0; i < d.rows; i++)
        for (int64_t j = 0; j < d.cols; j++) {
            int64_t k = i * d.cols + j;
            gw[k] += gy[k] / sigma - c * u[i] * v[j];
        }
}

const ag_op_def ag_def_spectral_norm = {.name = "spectral_norm", .min_src = 3, .max_src = 3,
                                        .infer = spectral_norm_infer, .forward = spectral_norm_forward,
                                        .backward = spectral_norm_backward};

ag_node *ag_spectral_norm(ag_graph *g, ag_node *w, ag_node *u, ag_node *v, float eps)
{
    return ag_new(g, AG_OP_SPECTRAL_NORM, 3, (ag_node *const[]){w, u, v}, BD_F(eps), NULL);
}
