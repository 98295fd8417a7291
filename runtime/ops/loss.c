/* loss.c — the losses, each as PyTorch defines it, with reduction i[0] (mean, sum or
 * none, an ag_reduction). Mean divides by the element count (by the row count N for
 * cross_entropy).
 *
 * Each loss gives its terms, one per element (per row for cross_entropy), in double; one
 * driver stores them (reduction none) or sums them in double: a mean over a batch of
 * images adds up tens of thousands of terms. The sum is cut into blocks by the element
 * count alone, each block summed in four lanes (a loop that vectorizes) and the blocks
 * added in order, so the pool may run the blocks on any threads and the loss has the
 * same bits at every thread count.
 *
 * Gradients: bce and bce_with_logits give none to their target, as PyTorch; mse, l1,
 * kl_normal, hinge and wasserstein give one to both operands. */
#include <math.h>

#include "aigc/graph.h"
#include "aigc/pool.h"
#include "build.h"
#include "vmath.h"

/* ---------------------------------------------------------------- reduction -- */

/* The terms of elements [lo, hi), at most LOSS_BLOCK of them, into v[0 .. hi - lo). */
typedef void (*loss_terms_fn)(const ag_node *n, int64_t lo, int64_t hi, double *v);

/* LOSS_BLOCK: the terms a call makes, on the stack. LOSS_SUM_BLOCK: the elements of one
 * block of the sum. LOSS_GRAIN: the fewest elements worth a second thread. */
enum { LOSS_BLOCK = 256, LOSS_SUM_BLOCK = 4096, LOSS_GRAIN = 4096 };

typedef struct loss_job {
    ag_node *n;
    loss_terms_fn terms;
} loss_job;

static void loss_store(void *ctx, int64_t lo, int64_t hi)
{
    const loss_job *j = ctx;
    double v[LOSS_BLOCK];
    for (int64_t k0 = lo; k0 < hi; k0 += LOSS_BLOCK) {
        int64_t m = hi - k0 < LOSS_BLOCK ? hi - k0 : LOSS_BLOCK;
        j->terms(j->n, k0, k0 + m, v);
        for (int64_t k = 0; k < m; k++) j->n->data[k0 + k] = (float)v[k];
    }
}

AG_SIMD_CLONES
static double loss_add(void *ctx, int64_t lo, int64_t hi)
{
    const loss_job *j = ctx;
    double v[LOSS_BLOCK], lane[4] = {0, 0, 0, 0};
    for (int64_t k0 = lo; k0 < hi; k0 += LOSS_BLOCK) {
        int64_t m = hi - k0 < LOSS_BLOCK ? hi - k0 : LOSS_BLOCK, k = 0;
        j->terms(j->n, k0, k0 + m, v);
        for (; k + 4 <= m; k += 4)
            for (int l = 0; l < 4; l++) lane[l] += v[k + l];
        for (; k < m; k++) lane[k & 3] += v[k];
    }
    return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

/* The blocks and grains above count elements; a term that stands for a row of `per`
 * elements (cross_entropy) has them divided by that. */
static int64_t loss_per(int64_t size, int64_t per)
{
    return per > 0 && size / per > 16 ? size / per : 16;
}

/* n's output from the terms of its count elements (or rows of `per` elements). A mean
 * divides by the whole batch's count in a shard (ag_mean_count). */
static void loss_forward(const ag_graph *g, ag_node *n, int64_t count, int64_t per, loss_terms_fn terms)
{
    loss_job j = {n, terms};
    if (n->i[0] == AG_RED_NONE) {
        tp_for(count, loss_per(LOSS_GRAIN, per), loss_store, &j);
        return;
    }
    double s = tp_sum(count, loss_per(LOSS_SUM_BLOCK, per), loss_add, &j);
    n->data[0] = (float)(n->i[0] == AG_RED_MEAN ? s / (double)ag_mean_count(g, n->src[0], count) : s);
}

/* The loss's shape: that of x with reduction none, else a scalar. */
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

/* d(output)/d(element k's loss) times the output's gradient. */
static inline float loss_dy(const ag_node *n, int64_t k, int64_t count)
{
    switch (n->i[0]) {
    case AG_RED_MEAN: return n->grad[0] / (float)count;
    case AG_RED_SUM: return n->grad[0];
    default: return n->grad[k];
    }
}

/* A backward cut into ranges for the pool: dy is loss_dy's value for every element
 * unless `none`, where each element has its own (n->grad). */
typedef struct loss_bw {
    const ag_node *n;
    unsigned need;
    float dy;
    int none, assign;
} loss_bw;

static loss_bw loss_bw_of(const ag_graph *g, const ag_node *n, unsigned need, int64_t count, int assign)
{
    int none = n->i[0] == AG_RED_NONE;
    return (loss_bw){n, need, none ? 0.0f : loss_dy(n, 0, ag_mean_count(g, n->src[0], count)), none, assign};
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

/* Both operands are range-checked: a target outside [0, 1] (data left in [-1, 1]) would
 * make the loss negative and the training silently wrong. bce_terms makes the term of
 * such an element NaN, so the check costs no pass of its own: the output (the sum, or
 * each term with reduction none) has a NaN only then, and only then is the first bad
 * element looked for, to name it. A serial pass before the terms would take 2 % of a
 * VAE epoch on the calling thread, with the other one idle. */
static void bce_fail(ag_graph *g, ag_node *n, const float *p, const float *t, int64_t len)
{
    for (int64_t k = 0; k < len; k++) {
        if (!(t[k] >= 0 && t[k] <= 1)) {
            ag_fail(g, n,
                    "bce: target %g at element %lld is outside [0, 1]; bce targets are "
                    "probabilities (is the data scaled to [-1, 1]?)",
                    t[k], (long long)k);
            return;
        }
        if (!(p[k] >= 0 && p[k] <= 1)) {
            ag_fail(g, n,
                    "bce: input %g at element %lld is outside [0, 1]; bce takes probabilities "
                    "(end the model with sigmoid, or use bce_with_logits)",
                    p[k], (long long)k);
            return;
        }
    }
    AG_ASSERT(0 && "a bce term is NaN with every operand in [0, 1]");
}

/* -(t log p + (1 - t) log(1 - p)), each log clamped at -100 so that p = 0 or 1 costs
 * 100 rather than infinity, and NaN for an operand outside [0, 1] (bce_fail). The logs
 * are most of the loss's time, so they are taken in float, as PyTorch does, by vm_logf
 * in a loop that vectorizes; log(1 - p) stands for log1pf(-p), and the rounding of 1 - p
 * moves it by 3e-8 at most. The log whose weight is 0 counts as 0: a GAN's targets are
 * all 0 or all 1, and 0 times a clamped log is 0 anyway. */
AG_SIMD_CLONES
static void bce_terms(const ag_node *n, int64_t lo, int64_t hi, double *v)
{
    const float *p = n->src[0]->data + lo, *t = n->src[1]->data + lo;
    for (int64_t k = 0; k < hi - lo; k++) {
        float a = vm_logf(p[k]), b = vm_logf(1.0f - p[k]);
        a = a > -100.0f ? a : -100.0f;
        b = b > -100.0f ? b : -100.0f;
        float lp = t[k] != 0 ? a : 0.0f, lq = t[k] != 1 ? b : 0.0f;
        int in_range = (t[k] >= 0) & (t[k] <= 1) & (p[k] >= 0) & (p[k] <= 1);
        v[k] = in_range ? -((double)t[k] * lp + (1.0 - t[k]) * lq) : NAN;
    }
}

static void bce_forward(ag_graph *g, ag_node *n)
{
    int64_t len = ag_numel(&n->src[0]->shape), out = ag_numel(&n->shape);
    loss_forward(g, n, len, 1, bce_terms);
    int nan = 0;
    for (int64_t k = 0; k < out; k++) nan |= n->data[k] != n->data[k];
    if (nan) bce_fail(g, n, n->src[0]->data, n->src[1]->data, len);
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
AG_SIMD_CLONES
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

static void bce_bw_range(void *ctx, int64_t lo, int64_t hi)
{
    const loss_bw *j = ctx;
    const ag_node *n = j->n;
    bce_grad(n->src[0]->data + lo, n->src[1]->data + lo, j->none ? n->grad + lo : NULL, j->dy,
             n->src[0]->grad + lo, hi - lo, j->assign);
}

static void bce_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    int64_t len = ag_numel(&n->src[0]->shape);
    loss_bw j = loss_bw_of(g, n, need, len, g->bw_assign & 1u);
    tp_for(len, LOSS_GRAIN, bce_bw_range, &j);
}

const ag_op_def ag_def_bce = {.name = "bce", .min_src = 2, .max_src = 2,
                              .flags = AG_DEF_BW_ASSIGN, .infer = pair_infer,
                              .forward = bce_forward, .backward = bce_backward};

/* --------------------------------------------------------- bce_with_logits -- */

/* bce(sigmoid(x), t) in the form that neither overflows nor loses small losses:
 * max(x, 0) - x t + log(1 + exp(-|x|)). */
static void bcel_terms(const ag_node *n, int64_t lo, int64_t hi, double *v)
{
    const float *x = n->src[0]->data, *t = n->src[1]->data;
    for (int64_t k = lo; k < hi; k++) {
        double xk = x[k];
        v[k - lo] = fmax(xk, 0) - xk * t[k] + log1p(exp(-fabs(xk)));
    }
}

static void bcel_forward(ag_graph *g, ag_node *n)
{
    loss_forward(g, n, ag_numel(&n->src[0]->shape), 1, bcel_terms);
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
        dx[k] += loss_dy(n, k, ag_mean_count(g, n->src[0], len)) * (sig - t[k]);
    }
}

const ag_op_def ag_def_bce_with_logits = {.name = "bce_with_logits", .min_src = 2, .max_src = 2,
                                          .infer = pair_infer, .forward = bcel_forward,
                                          .backward = bcel_backward};

/* ---------------------------------------------------------------- mse, l1 -- */

static void mse_terms(const ag_node *n, int64_t lo, int64_t hi, double *v)
{
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    for (int64_t k = lo; k < hi; k++) {
        double d = (double)a[k] - b[k];
        v[k - lo] = d * d;
    }
}

static void mse_forward(ag_graph *g, ag_node *n)
{
    loss_forward(g, n, ag_numel(&n->src[0]->shape), 1, mse_terms);
}

static void mse_bw_range(void *ctx, int64_t lo, int64_t hi)
{
    const loss_bw *j = ctx;
    const ag_node *n = j->n;
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    for (int64_t k = lo; k < hi; k++) {
        float d = 2 * (a[k] - b[k]) * (j->none ? n->grad[k] : j->dy);
        if (j->need & 1u) n->src[0]->grad[k] += d;
        if (j->need & 2u) n->src[1]->grad[k] -= d;
    }
}

static void mse_backward(ag_graph *g, ag_node *n, unsigned need)
{
    int64_t len = ag_numel(&n->src[0]->shape);
    loss_bw j = loss_bw_of(g, n, need, len, 0);
    tp_for(len, LOSS_GRAIN, mse_bw_range, &j);
}

const ag_op_def ag_def_mse = {.name = "mse", .min_src = 2, .max_src = 2, .infer = pair_infer,
                              .forward = mse_forward, .backward = mse_backward};

static void l1_terms(const ag_node *n, int64_t lo, int64_t hi, double *v)
{
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    for (int64_t k = lo; k < hi; k++) v[k - lo] = fabs((double)a[k] - b[k]);
}

static void l1_forward(ag_graph *g, ag_node *n)
{
    loss_forward(g, n, ag_numel(&n->src[0]->shape), 1, l1_terms);
}

/* The sign of a - b, 0 where they are equal (PyTorch's subgradient). */
static void l1_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape), count = ag_mean_count(g, n->src[0], len);
    for (int64_t k = 0; k < len; k++) {
        float s = (float)((a[k] > b[k]) - (a[k] < b[k])) * loss_dy(n, k, count);
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

static int ce_classes(const ag_node *n)
{
    return n->src[0]->shape.d[n->src[0]->shape.ndim - 1];
}

/* Row r's term is log(sum(exp(x))) - x[target]; its softmax goes to aux. */
static void ce_terms(const ag_node *n, int64_t lo, int64_t hi, double *v)
{
    const float *t = n->src[1]->data;
    int c = ce_classes(n);
    for (int64_t r = lo; r < hi; r++) {
        const float *xr = n->src[0]->data + r * c;
        float *pr = n->aux + r * c;
        float mx = xr[0];
        for (int j = 1; j < c; j++) mx = fmaxf(mx, xr[j]);
        double s = 0;
        for (int j = 0; j < c; j++) s += exp((double)xr[j] - mx);
        double lse = mx + log(s);
        for (int j = 0; j < c; j++) pr[j] = (float)exp(xr[j] - lse);
        v[r - lo] = lse - xr[(int)t[r]];
    }
}

static void ce_forward(ag_graph *g, ag_node *n)
{
    const float *t = n->src[1]->data;
    int64_t rows = ce_rows(n);
    int c = ce_classes(n);
    for (int64_t r = 0; r < rows; r++)
        if (!(t[r] >= 0 && t[r] < c && t[r] == floorf(t[r]))) {
            ag_fail(g, n, "cross_entropy: target %g in row %lld is not a class index in [0, %d)",
                    t[r], (long long)r, c);
            return;
        }
    loss_forward(g, n, rows, c, ce_terms);
}

static void ce_bw_range(void *ctx, int64_t lo, int64_t hi)
{
    const loss_bw *j = ctx;
    const ag_node *n = j->n;
    const float *t = n->src[1]->data;
    int c = ce_classes(n);
    for (int64_t r = lo; r < hi; r++) {
        const float *pr = n->aux + r * c;
        float *dr = n->src[0]->grad + r * c, dy = j->none ? n->grad[r] : j->dy;
        for (int k = 0; k < c; k++) dr[k] += dy * pr[k];
        dr[(int)t[r]] -= dy;
    }
}

static void ce_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    int64_t rows = ce_rows(n);
    loss_bw j = loss_bw_of(g, n, need, rows, 0);
    tp_for(rows, loss_per(LOSS_GRAIN, ce_classes(n)), ce_bw_range, &j);
}

const ag_op_def ag_def_cross_entropy = {.name = "cross_entropy", .min_src = 2, .max_src = 2,
                                        .infer = ce_infer, .forward = ce_forward,
                                        .backward = ce_backward};

/* --------------------------------------------------------------- kl_normal -- */

/* KL(N(mu, exp(logvar)) || N(0, 1)) per element: -0.5 (1 + logvar - mu^2 - exp(logvar)),
 * the VAE's regularizer. */
static void kl_terms(const ag_node *n, int64_t lo, int64_t hi, double *v)
{
    const float *mu = n->src[0]->data, *lv = n->src[1]->data;
    for (int64_t k = lo; k < hi; k++)
        v[k - lo] = -0.5 * (1.0 + lv[k] - (double)mu[k] * mu[k] - exp((double)lv[k]));
}

static void kl_forward(ag_graph *g, ag_node *n)
{
    loss_forward(g, n, ag_numel(&n->src[0]->shape), 1, kl_terms);
}

static void kl_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const float *mu = n->src[0]->data, *lv = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape), count = ag_mean_count(g, n->src[0], len);
    for (int64_t k = 0; k < len; k++) {
        float dy = loss_dy(n, k, count);
        if (need & 1u) n->src[0]->grad[k] += dy * mu[k];
        if (need & 2u) n->src[1]->grad[k] += dy * 0.5f * (expf(lv[k]) - 1);
    }
}

const ag_op_def ag_def_kl_normal = {.name = "kl_normal", .min_src = 2, .max_src = 2,
                                    .infer = pair_infer, .forward = kl_forward,
                                    .backward = kl_backward};

/* ------------------------------------------------------ hinge, wasserstein -- */

/* The GAN critics' losses on scores s with targets t, 1 for real and -1 for fake:
 * hinge max(0, 1 - t s) (SN-GAN's discriminator), wasserstein -t s (WGAN's critic, and
 * either generator: -mean(D(fake))). */
static void hinge_terms(const ag_node *n, int64_t lo, int64_t hi, double *v)
{
    const float *s = n->src[0]->data, *t = n->src[1]->data;
    for (int64_t k = lo; k < hi; k++) v[k - lo] = fmax(0.0, 1.0 - (double)t[k] * s[k]);
}

static void hinge_forward(ag_graph *g, ag_node *n)
{
    loss_forward(g, n, ag_numel(&n->src[0]->shape), 1, hinge_terms);
}

/* The gradient of -t s, the wasserstein term, to s (-t) and to t (-s); with margin, the
 * hinge's: only inside the margin (1 - t s > 0), 0 at the kink and past it (relu's
 * subgradient at 0, as PyTorch's relu(1 - t * s) gives). */
static void critic_backward(ag_graph *g, ag_node *n, unsigned need, int margin)
{
    const float *s = n->src[0]->data, *t = n->src[1]->data;
    int64_t len = ag_numel(&n->src[0]->shape), count = ag_mean_count(g, n->src[0], len);
    for (int64_t k = 0; k < len; k++) {
        if (margin && !(1.0f - t[k] * s[k] > 0)) continue;
        float dy = loss_dy(n, k, count);
        if (need & 1u) n->src[0]->grad[k] -= dy * t[k];
        if (need & 2u) n->src[1]->grad[k] -= dy * s[k];
    }
}

static void hinge_backward(ag_graph *g, ag_node *n, unsigned need) { critic_backward(g, n, need, 1); }

const ag_op_def ag_def_hinge = {.name = "hinge", .min_src = 2, .max_src = 2, .infer = pair_infer,
                                .forward = hinge_forward, .backward = hinge_backward};

static void wasserstein_terms(const ag_node *n, int64_t lo, int64_t hi, double *v)
{
    const float *s = n->src[0]->data, *t = n->src[1]->data;
    for (int64_t k = lo; k < hi; k++) v[k - lo] = -(double)t[k] * s[k];
}

static void wasserstein_forward(ag_graph *g, ag_node *n)
{
    loss_forward(g, n, ag_numel(&n->src[0]->shape), 1, wasserstein_terms);
}

static void wasserstein_backward(ag_graph *g, ag_node *n, unsigned need) { critic_backward(g, n, need, 0); }

const ag_op_def ag_def_wasserstein = {.name = "wasserstein", .min_src = 2, .max_src = 2,
                                      .infer = pair_infer, .forward = wasserstein_forward,
                                      .backward = wasserstein_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_loss(ag_graph *g, ag_op op, ag_node *a, ag_node *b, ag_reduction red)
{
    return bd_new2(g, op, a, b, NULL, BD_I((int)red));
}
