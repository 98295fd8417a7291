/* loss.c — the losses, each as PyTorch defines it, with reduction i[0] (mean, sum or
 * none, an ag_reduction). Mean divides by the element count (by the row count N for
 * cross_entropy). Values are summed in double: a mean over a batch of images adds up
 * tens of thousands of terms.
 *
 * Gradients: bce and bce_with_logits give none to their target, as PyTorch; mse, l1
 * and kl_normal give one to both operands. */
#include <math.h>

#include "aigc/graph.h"
#include "vmath.h"

/* ---------------------------------------------------------------- reduction -- */

/* The loss of each element of x with reduction none, else a scalar. */
static void loss_shape(ag_node *n, const ag_node *x)
{
    AG_ASSERT(n->i[0] >= AG_RED_MEAN && n->i[0] <= AG_RED_NONE);
    if (n->i[0] == AG_RED_NONE) {
        n->shape = x->shape;
        n->batched = x->batched;
    } else {
        n->shape = ag_shape0();
        n->batched = 0;
    }
}

/* Element k's loss v: kept as is with reduction none, else added to *acc. */
static inline void loss_put(ag_node *n, int64_t k, double v, double *acc)
{
    if (n->i[0] == AG_RED_NONE)
        n->data[k] = (float)v;
    else
        *acc += v;
}

static void loss_reduce(ag_node *n, double acc, int64_t count)
{
    if (n->i[0] == AG_RED_MEAN) n->data[0] = (float)(acc / (double)count);
    if (n->i[0] == AG_RED_SUM) n->data[0] = (float)acc;
}

/* d(output)/d(element k's loss) times the output's gradient. */
static inline float loss_dy(const ag_node *n, int64_t k, int64_t count)
{
    switch (n->i[0]) {
    case AG_RED_MEAN: return n->grad[0] / (float)count;
    case AG_RED_SUM: return n->grad[0];
    default: return n->grad[k];
    }
}

/* Two operands of one shape: (input, target), or (mu, logvar) for kl_normal. */
static int pair_infer(ag_node *n, ag_error *err)
{
    const ag_node *a = n->src[0], *b = n->src[1];
    if (!ag_shape_eq(&a->shape, &b->shape)) {
        int kl = n->op == AG_OP_KL_NORMAL;
        char sa[64], sb[64];
        return ag_errorf(err, n->loc, "%s: the %s has shape %s but the %s has shape %s",
                         ag_op_defs[n->op]->name, kl ? "logvar" : "target",
                         ag_shape_str(&b->shape, b->batched, sb, sizeof sb),
                         kl ? "mu" : "input", ag_shape_str(&a->shape, a->batched, sa, sizeof sa));
    }
    loss_shape(n, a);
    return AG_OK;
}

/* --------------------------------------------------------------------- bce -- */

/* -(t log p + (1 - t) log(1 - p)), each log clamped at -100 so that p = 0 or 1 costs
 * 100 rather than infinity. The logs are most of the loss's time, so they are taken in
 * float, as PyTorch does, by vm_logf in a loop that vectorizes, a block at a time;
 * log(1 - p) stands for log1pf(-p), and the rounding of 1 - p moves it by 3e-8 at
 * most. The log whose weight is 0 counts as 0: a GAN's targets are all 0 or all 1, and
 * 0 times a clamped log is 0 anyway. The terms are then summed in double, in order. */
enum { BCE_BLOCK = 256 };

static void bce_logs(const float *p, const float *t, int64_t len, float *lp, float *lq)
{
    for (int64_t k = 0; k < len; k++) {
        float a = vm_logf(p[k]), b = vm_logf(1.0f - p[k]);
        a = a > -100.0f ? a : -100.0f;
        b = b > -100.0f ? b : -100.0f;
        lp[k] = t[k] != 0 ? a : 0.0f;
        lq[k] = t[k] != 1 ? b : 0.0f;
    }
}

/* Both operands are range-checked: a target outside [0, 1] (data left in [-1, 1]) would
 * make the loss negative and the training silently wrong. The check is one pass without
 * branches; only a failed one looks for the first bad element, to name it. */
static int bce_check(ag_graph *g, ag_node *n, const float *p, const float *t, int64_t len)
{
    int good = 1;
    for (int64_t k = 0; k < len; k++)
        good &= (t[k] >= 0) & (t[k] <= 1) & (p[k] >= 0) & (p[k] <= 1);
    if (good) return AG_OK;
    for (int64_t k = 0; k < len; k++) {
        if (!(t[k] >= 0 && t[k] <= 1)) {
            ag_fail(g, n,
                    "bce: target %g at element %lld is outside [0, 1]; bce targets are "
                    "probabilities (is the data scaled to [-1, 1]?)",
                    t[k], (long long)k);
            return AG_ERR;
        }
        if (!(p[k] >= 0 && p[k] <= 1)) {
            ag_fail(g, n,
                    "bce: input %g at element %lld is outside [0, 1]; bce takes probabilities "
                    "(end the model with sigmoid, or use bce_with_logits)",
                    p[k], (long long)k);
            return AG_ERR;
        }
    }
    AG_ASSERT(0 && "the branch-free check and the search disagree");
}

static void bce_forward(ag_graph *g, ag_node *n)
{
    const float *p = n->src[0]->data, *t = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    if (bce_check(g, n, p, t, len) != AG_OK) return;
    double acc = 0;
    float lp[BCE_BLOCK], lq[BCE_BLOCK];
    for (int64_t k0 = 0; k0 < len; k0 += BCE_BLOCK) {
        int64_t m = len - k0 < BCE_BLOCK ? len - k0 : BCE_BLOCK;
        bce_logs(p + k0, t + k0, m, lp, lq);
        for (int64_t k = 0; k < m; k++) {
            float tk = t[k0 + k];
            loss_put(n, k0 + k, -((double)tk * lp[k] + (1.0 - tk) * lq[k]), &acc);
        }
    }
    loss_reduce(n, acc, len);
}

/* PyTorch's form, (p - t) / p(1 - p) with the denominator kept from 0 (a select rather
 * than fmaxf, which does not vectorize), times dy. */
static inline float bce_d(float p, float t, float dy)
{
    float q = p * (1 - p);
    q = q > 1e-12f ? q : 1e-12f;
    return dy * (p - t) / q;
}

/* dy is the loss's gradient per element (gy, with reduction none) or one number for
 * all; a loop for each case, so that each vectorizes. */
static void bce_grad(const float *p, const float *t, const float *gy, float dy, float *dp,
                     int64_t len, int assign)
{
    if (gy && assign)
        for (int64_t k = 0; k < len; k++) dp[k] = bce_d(p[k], t[k], gy[k]);
    else if (gy)
        for (int64_t k = 0; k < len; k++) dp[k] += bce_d(p[k], t[k], gy[k]);
    else if (assign)
        for (int64_t k = 0; k < len; k++) dp[k] = bce_d(p[k], t[k], dy);
    else
        for (int64_t k = 0; k < len; k++) dp[k] += bce_d(p[k], t[k], dy);
}

static void bce_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    int64_t len = ag_numel(&n->src[0]->shape);
    int none = n->i[0] == AG_RED_NONE;
    bce_grad(n->src[0]->data, n->src[1]->data, none ? n->grad : NULL,
             none ? 0.0f : loss_dy(n, 0, len), n->src[0]->grad, len, g->bw_assign & 1u);
}

const ag_op_def ag_def_bce = {.name = "bce", .min_src = 2, .max_src = 2,
                              .flags = AG_DEF_BW_ASSIGN, .infer = pair_infer,
                              .forward = bce_forward, .backward = bce_backward};

/* --------------------------------------------------------- bce_with_logits -- */

/* bce(sigmoid(x), t) in the form that neither overflows nor loses small losses:
 * max(x, 0) - x t + log(1 + exp(-|x|)). */
static void bcel_forward(ag_graph *g, ag_node *n)
{
    const float *x = n->src[0]->data, *t = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    double acc = 0;
    for (int64_t k = 0; k < len; k++) {
        double v = x[k];
        loss_put(n, k, fmax(v, 0) - v * t[k] + log1p(exp(-fabs(v))), &acc);
    }
    loss_reduce(n, acc, len);
}

static void bcel_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    const float *x = n->src[0]->data, *t = n->src[1]->data;
    float *dx = n->src[0]->grad;
    int64_t len = ag_numel(&n->src[0]->shape);
    for (int64_t k = 0; k < len; k++) {
        float e = expf(-fabsf(x[k]));
        float sig = x[k] >= 0 ? 1 / (1 + e) : e / (1 + e);
        dx[k] += loss_dy(n, k, len) * (sig - t[k]);
    }
}

const ag_op_def ag_def_bce_with_logits = {.name = "bce_with_logits", .min_src = 2, .max_src = 2,
                                          .infer = pair_infer, .forward = bcel_forward,
                                          .backward = bcel_backward};

/* ---------------------------------------------------------------- mse, l1 -- */

static void mse_forward(ag_graph *g, ag_node *n)
{
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    double acc = 0;
    for (int64_t k = 0; k < len; k++) {
        double d = (double)a[k] - b[k];
        loss_put(n, k, d * d, &acc);
    }
    loss_reduce(n, acc, len);
}

static void mse_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    for (int64_t k = 0; k < len; k++) {
        float d = 2 * (a[k] - b[k]) * loss_dy(n, k, len);
        if (need & 1u) n->src[0]->grad[k] += d;
        if (need & 2u) n->src[1]->grad[k] -= d;
    }
}

const ag_op_def ag_def_mse = {.name = "mse", .min_src = 2, .max_src = 2, .infer = pair_infer,
                              .forward = mse_forward, .backward = mse_backward};

static void l1_forward(ag_graph *g, ag_node *n)
{
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    double acc = 0;
    for (int64_t k = 0; k < len; k++) loss_put(n, k, fabs((double)a[k] - b[k]), &acc);
    loss_reduce(n, acc, len);
}

/* The sign of a - b, 0 where they are equal (PyTorch's subgradient). */
static void l1_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    for (int64_t k = 0; k < len; k++) {
        float s = (float)((a[k] > b[k]) - (a[k] < b[k])) * loss_dy(n, k, len);
        if (need & 1u) n->src[0]->grad[k] += s;
        if (need & 2u) n->src[1]->grad[k] -= s;
    }
}

const ag_op_def ag_def_l1 = {.name = "l1", .min_src = 2, .max_src = 2, .infer = pair_infer,
                             .forward = l1_forward, .backward = l1_backward};

/* ----------------------------------------------------------- cross_entropy -- */

/* logits [..., C], targets [...] holding class indices as floats: one row of C logits
 * per target, so [N, C] with [N] as in PyTorch, and [B, T, C] with [B, T] for a
 * sequence (where PyTorch wants the classes in dim 1). Mean divides by the row count.
 * The softmax of each row is kept in aux: the backward is softmax - one_hot(target). */
static int ce_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0], *t = n->src[1];
    char sx[64], st[64];
    ag_shape_str(&x->shape, x->batched, sx, sizeof sx);
    ag_shape_str(&t->shape, t->batched, st, sizeof st);
    if (x->shape.ndim < 2)
        return ag_errorf(err, n->loc, "cross_entropy: the logits must be [N, C] or [..., C], got %s", sx);
    int fits = t->shape.ndim == x->shape.ndim - 1;
    for (int k = 0; fits && k < t->shape.ndim; k++) fits = t->shape.d[k] == x->shape.d[k];
    if (!fits)
        return ag_errorf(err, n->loc,
                         "cross_entropy: the targets have shape %s but the logits %s need one "
                         "class index per row", st, sx);
    n->aux_numel = ag_numel(&x->shape);
    loss_shape(n, x);
    if (n->i[0] == AG_RED_NONE) n->shape = t->shape;
    return AG_OK;
}

static int64_t ce_rows(const ag_node *n)
{
    return ag_numel(&n->src[1]->shape);
}

static void ce_forward(ag_graph *g, ag_node *n)
{
    const float *x = n->src[0]->data, *t = n->src[1]->data;
    int64_t rows = ce_rows(n);
    int c = n->src[0]->shape.d[n->src[0]->shape.ndim - 1];
    double acc = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *pr = n->aux + r * c;
        if (!(t[r] >= 0 && t[r] < c && t[r] == floorf(t[r]))) {
            ag_fail(g, n, "cross_entropy: target %g in row %lld is not a class index in [0, %d)",
                    t[r], (long long)r, c);
            return;
        }
        float mx = xr[0];
        for (int j = 1; j < c; j++) mx = fmaxf(mx, xr[j]);
        double s = 0;
        for (int j = 0; j < c; j++) s += exp((double)xr[j] - mx);
        double lse = mx + log(s);
        for (int j = 0; j < c; j++) pr[j] = (float)exp(xr[j] - lse);
        loss_put(n, r, lse - xr[(int)t[r]], &acc);
    }
    loss_reduce(n, acc, rows);
}

static void ce_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    const float *t = n->src[1]->data;
    int64_t rows = ce_rows(n);
    int c = n->src[0]->shape.d[n->src[0]->shape.ndim - 1];
    for (int64_t r = 0; r < rows; r++) {
        const float *pr = n->aux + r * c;
        float *dr = n->src[0]->grad + r * c, dy = loss_dy(n, r, rows);
        for (int j = 0; j < c; j++) dr[j] += dy * pr[j];
        dr[(int)t[r]] -= dy;
    }
}

const ag_op_def ag_def_cross_entropy = {.name = "cross_entropy", .min_src = 2, .max_src = 2,
                                        .infer = ce_infer, .forward = ce_forward,
                                        .backward = ce_backward};

/* --------------------------------------------------------------- kl_normal -- */

/* KL(N(mu, exp(logvar)) || N(0, 1)) per element: -0.5 (1 + logvar - mu^2 - exp(logvar)),
 * the VAE's regularizer. */
static void kl_forward(ag_graph *g, ag_node *n)
{
    const float *mu = n->src[0]->data, *lv = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    double acc = 0;
    for (int64_t k = 0; k < len; k++)
        loss_put(n, k, -0.5 * (1.0 + lv[k] - (double)mu[k] * mu[k] - exp((double)lv[k])), &acc);
    loss_reduce(n, acc, len);
}

static void kl_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const float *mu = n->src[0]->data, *lv = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape);
    for (int64_t k = 0; k < len; k++) {
        float dy = loss_dy(n, k, len);
        if (need & 1u) n->src[0]->grad[k] += dy * mu[k];
        if (need & 2u) n->src[1]->grad[k] += dy * 0.5f * (expf(lv[k]) - 1);
    }
}

const ag_op_def ag_def_kl_normal = {.name = "kl_normal", .min_src = 2, .max_src = 2,
                                    .infer = pair_infer, .forward = kl_forward,
                                    .backward = kl_backward};
