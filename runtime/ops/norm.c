/*
 * norm.c — layer_norm, group_norm and batch_norm, as PyTorch's.
 *
 * Dimension letters, for the whole file: the input is seen as [N, C, S]: N samples, C
 * channels, S positions per channel (H * W for an image, 1 for layer norm's rows). A
 * set of values is normalized as xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps)
 * with the biased variance, then y = xhat * weight[c] + bias[c]. Forward keeps the mean
 * and rstd of every set in aux; backward recomputes xhat from them. For a set of M
 * values and dxhat = dy * weight[c], the input's gradient is
 *   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
 *
 * group_norm normalizes each sample's groups of C / G channels; layer_norm is group_norm
 * with one group over [rows, C, 1]. batch_norm normalizes each channel over N and S.
 */
#include <math.h>

#include "aigc/graph.h"
#include "aigc/pool.h"
#include "axis.h"
#include "build.h"
#include "vmath.h"

typedef struct nm_view {
    int64_t n, s;
    int c;
} nm_view;

/* x [d0, d1, ...] as [d0, d1, d2 * ...]. */
static nm_view nm_channels_second(const ag_shape *x)
{
    nm_view v = {x->d[0], 1, x->d[1]};
    for (int k = 2; k < x->ndim; k++) v.s *= x->d[k];
    return v;
}

/* Sums in double, in vmath.h's lane order: a single chain waits on each add, and strict
 * float semantics keep the compiler from splitting it. */
AG_SIMD_CLONES
static double nm_sum(const float *x, int64_t len)
{
    double s[VM_LANES] = {0};
    int64_t j = 0;
    for (; j + VM_LANES <= len; j += VM_LANES)
        for (int k = 0; k < VM_LANES; k++) s[k] += x[j + k];
    for (int k = 0; j + k < len; k++) s[k] += x[j + k];
    return vm_lanes_total_d(s);
}

/* sum((x - m)^2), the same way. */
AG_SIMD_CLONES
static double nm_sum_sq(const float *x, int64_t len, float m)
{
    double s[VM_LANES] = {0};
    int64_t j = 0;
    for (; j + VM_LANES <= len; j += VM_LANES)
        for (int k = 0; k < VM_LANES; k++) s[k] += (double)(x[j + k] - m) * (x[j + k] - m);
    for (int k = 0; j + k < len; k++) s[k] += (double)(x[j + k] - m) * (x[j + k] - m);
    return vm_lanes_total_d(s);
}

/* Each of the sources from index first on is a [C] vector named in names[]. */
static int nm_check_vectors(const ag_node *n, int first, const char *const *names, int c,
                            ag_error *err)
{
    for (int k = first; k < n->nsrc; k++) {
        const ag_node *p = n->src[k];
        if (p->shape.ndim != 1 || p->shape.d[0] != c)
            return ag_errorf(err, n->loc, "%s: the %s has shape %s but the input has %d channels",
                             ax_op_name(n), names[k - first], AX_SHAPE(p), c);
    }
    return AG_OK;
}

/* ----------------------------------------------------------- group_norm -- */

/* Sources: x, then optionally weight and bias. The groups per sample come from i[0]
 * (group_norm) or are 1 (layer_norm). aux: mean[N * G] | rstd[N * G], and for
 * group_norm then each set's per-channel sums of backward, [N * G, 2, C / G].
 *
 * The sets (a sample's group) are independent, so forward and the input gradient are
 * spread over the pool by sets; the weight and bias gradients, which sum over the
 * samples, are added up after, set by set in order, so that the bits do not depend on
 * the thread count. */
typedef struct gn_geom {
    nm_view v;
    int groups, cg;             /* channels per group */
    const float *w, *b;         /* NULL without the affine sources */
} gn_geom;

static gn_geom gn_geom_with(const ag_node *n, nm_view v, int groups)
{
    return (gn_geom){v, groups, v.c / groups, n->nsrc > 1 ? n->src[1]->data : NULL,
                     n->nsrc > 2 ? n->src[2]->data : NULL};
}

static gn_geom layer_norm_geom(const ag_node *n)
{
    const ag_shape *x = &n->src[0]->shape;
    int c = x->d[x->ndim - 1];
    return gn_geom_with(n, (nm_view){ag_numel(x) / c, 1, c}, 1);
}

static gn_geom group_norm_geom(const ag_node *n)
{
    return gn_geom_with(n, nm_channels_second(&n->src[0]->shape), n->i[0]);
}

static const char *const gn_affine_names[] = {"weight", "bias"};

static int layer_norm_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    if (x->shape.ndim < 1 || x->shape.d[x->shape.ndim - 1] < 1)
        return ag_errorf(err, n->loc, "layer_norm: the input must have a feature dimension, got %s",
                         AX_SHAPE(x));
    int c = x->shape.d[x->shape.ndim - 1];
    if (nm_check_vectors(n, 1, gn_affine_names, c, err) != AG_OK) return AG_ERR;
    n->shape = x->shape;
    n->batched = x->batched;
    n->aux_numel = 2 * (ag_numel(&x->shape) / c);
    return AG_OK;
}

static int group_norm_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    if (x->shape.ndim < 2)
        return ag_errorf(err, n->loc, "group_norm: the input must be [N, C, ...], got %s",
                         AX_SHAPE(x));
    int c = x->shape.d[1], groups = n->i[0];
    if (groups < 1 || c % groups != 0)
        return ag_errorf(err, n->loc, "group_norm: %d channels do not split into %d groups", c,
                         groups);
    if (nm_check_vectors(n, 1, gn_affine_names, c, err) != AG_OK) return AG_ERR;
    n->shape = x->shape;
    n->batched = x->batched;
    n->aux_numel = 2 * (int64_t)x->shape.d[0] * (groups + c);
    return AG_OK;
}

typedef struct gn_job {
    ag_node *n;
    gn_geom q;
    unsigned need;
    int assign; /* backward writes dx instead of adding to it */
} gn_job;

/* The fewest elements worth a second thread, and the sets that hold them. */
enum { GN_GRAIN = 4096 };

static int64_t gn_grain(const gn_geom *q)
{
    return tp_items_holding(GN_GRAIN, (int64_t)q->cg * q->v.s);
}

/* Sets [lo, hi): set k is x's [k * len, (k + 1) * len), the sets being contiguous. */
AG_SIMD_CLONES
static void gn_fw_sets(void *ctx, int64_t lo, int64_t hi)
{
    const gn_job *j = ctx;
    ag_node *n = j->n;
    gn_geom q = j->q;
    int64_t sets = q.v.n * q.groups, len = (int64_t)q.cg * q.v.s;
    float *mean = n->aux, *rstd = n->aux + sets;
    for (int64_t k = lo; k < hi; k++) {
        const float *x = n->src[0]->data + k * len;
        float *y = n->data + k * len;
        float m = (float)(nm_sum(x, len) / (double)len);
        float r = 1.0f / sqrtf((float)(nm_sum_sq(x, len, m) / (double)len) + n->f[0]);
        mean[k] = m;
        rstd[k] = r;
        int c0 = (int)(k % q.groups) * q.cg;
        if (q.v.s == 1 && q.b) {    /* layer norm's rows: a loop over channels vectorizes */
            const float *w = q.w + c0, *b = q.b + c0;
            for (int c = 0; c < q.cg; c++) y[c] = (x[c] - m) * r * w[c] + b[c];
        } else {
            for (int c = 0; c < q.cg; c++) {
                float scale = r * (q.w ? q.w[c0 + c] : 1.0f);
                float shift = (q.b ? q.b[c0 + c] : 0.0f) - m * scale;
                const float *xc = x + c * q.v.s;
                float *yc = y + c * q.v.s;
                for (int64_t i = 0; i < q.v.s; i++) yc[i] = xc[i] * scale + shift;
            }
        }
        /* The U-Net's SiLU after each group norm, on the set while it is in cache. */
        if (n->epilogue) ag_op_defs[n->epilogue->op]->range(n->epilogue, k * len, (k + 1) * len);
    }
}

static void gn_forward(ag_node *n, gn_geom q)
{
    tp_for_items(q.v.n * q.groups, gn_grain(&q), gn_fw_sets, &(gn_job){.n = n, .q = q});
}

/* gn_backward for one position per channel (layer norm's rows): the same sums in the
 * same order as the general loop below, so the same bits, in one loop over the channels
 * without the general loop's per-position bookkeeping, which costs about 30 cycles per
 * element of char-gpt's layer norms. (Cut over the pool, by sets for the input gradient
 * and by channels for the weight's, it is no faster on 2 threads.) */
static void gn_backward_rows(ag_node *n, unsigned need, int assign, gn_geom q, float *dw, float *db)
{
    int64_t sets = q.v.n * q.groups;
    const float *mean = n->aux, *rstd = n->aux + sets;
    for (int64_t k = 0; k < sets; k++) {
        const float *x = n->src[0]->data + k * q.cg, *dy = n->grad + k * q.cg;
        float m = mean[k], r = rstd[k];
        int c0 = (int)(k % q.groups) * q.cg;
        const float *w = q.w ? q.w + c0 : NULL;
        double sum_d = 0, sum_dx = 0;
        for (int c = 0; c < q.cg; c++) {
            double wc = w ? w[c] : 1.0;
            sum_d += wc * dy[c];
            sum_dx += wc * (dy[c] * ((x[c] - m) * r));
        }
        if (dw)
            for (int c = 0; c < q.cg; c++) dw[c0 + c] += dy[c] * ((x[c] - m) * r);
        if (db)
            for (int c = 0; c < q.cg; c++) db[c0 + c] += dy[c];
        if (!(need & 1u)) continue;
        float md = (float)(sum_d / (double)q.cg), mdx = (float)(sum_dx / (double)q.cg);
        float *dx = n->src[0]->grad + k * q.cg;
        for (int c = 0; c < q.cg; c++) {
            float d = r * (dy[c] * (w ? w[c] : 1.0f) - md - (x[c] - m) * r * mdx);
            dx[c] = assign ? d : dx[c] + d;
        }
    }
}

/* A channel's sums of dy and of dy * xhat over its len positions, in lanes (vmath.h). */
static inline void gn_dy_sums(const float *x, const float *dy, int64_t len, float m, float r, float *sd,
                              float *sdx)
{
    float d[VM_LANES] = {0}, dx[VM_LANES] = {0};
    int64_t i = 0;
    for (; i + VM_LANES <= len; i += VM_LANES)
        for (int l = 0; l < VM_LANES; l++) {
            d[l] += dy[i + l];
            dx[l] += dy[i + l] * ((x[i + l] - m) * r);
        }
    for (int l = 0; i + l < len; l++) {
        d[l] += dy[i + l];
        dx[l] += dy[i + l] * ((x[i + l] - m) * r);
    }
    *sd = vm_lanes_total(d);
    *sdx = vm_lanes_total(dx);
}

/* Sets [lo, hi) of group_norm's backward: each set's per-channel sums into aux (for
 * the weight and bias gradients), and its input gradient. */
AG_SIMD_CLONES
static void gn_bw_sets(void *ctx, int64_t lo, int64_t hi)
{
    const gn_job *j = ctx;
    ag_node *n = j->n;
    gn_geom q = j->q;
    int64_t sets = q.v.n * q.groups, len = (int64_t)q.cg * q.v.s;
    const float *mean = n->aux, *rstd = n->aux + sets;
    for (int64_t k = lo; k < hi; k++) {
        const float *x = n->src[0]->data + k * len, *dy = n->grad + k * len;
        float *part = n->aux + 2 * sets + 2 * k * q.cg;
        float m = mean[k], r = rstd[k];
        int c0 = (int)(k % q.groups) * q.cg;
        double sum_d = 0, sum_dx = 0;   /* sums of dxhat and dxhat * xhat */
        for (int c = 0; c < q.cg; c++) {
            float w = q.w ? q.w[c0 + c] : 1.0f;
            float sd, sdx;
            gn_dy_sums(x + c * q.v.s, dy + c * q.v.s, q.v.s, m, r, &sd, &sdx);
            sum_d += (double)w * sd;
            sum_dx += (double)w * sdx;
            part[c] = sd;
            part[q.cg + c] = sdx;
        }
        if (!(j->need & 1u)) continue;
        float md = (float)(sum_d / (double)len), mdx = (float)(sum_dx / (double)len);
        float *dx = n->src[0]->grad + k * len;
        for (int c = 0; c < q.cg; c++) {
            float w = q.w ? q.w[c0 + c] : 1.0f;
            const float *xc = x + c * q.v.s, *dyc = dy + c * q.v.s;
            float *dxc = dx + c * q.v.s;
            if (j->assign)
                for (int64_t i = 0; i < q.v.s; i++)
                    dxc[i] = r * (dyc[i] * w - md - (xc[i] - m) * r * mdx);
            else
                for (int64_t i = 0; i < q.v.s; i++)
                    dxc[i] += r * (dyc[i] * w - md - (xc[i] - m) * r * mdx);
        }
    }
}

/* The weight's and bias's gradients are sums over the whole batch, added into: cleared
 * first when assigned. */
static void gn_backward(ag_graph *g, ag_node *n, unsigned need, gn_geom q)
{
    int64_t sets = q.v.n * q.groups;
    float *dw = need & 2u ? n->src[1]->grad : NULL, *db = need & 4u ? n->src[2]->grad : NULL;
    int assign = ag_bw_clear(g, n, 6u) & 1u;
    if (q.v.s == 1) {
        gn_backward_rows(n, need, assign, q, dw, db);
        return;
    }
    tp_for_items(sets, gn_grain(&q), gn_bw_sets, &(gn_job){n, q, need, assign});
    for (int64_t k = 0; k < sets && (dw || db); k++) {
        const float *part = n->aux + 2 * sets + 2 * k * q.cg;
        int c0 = (int)(k % q.groups) * q.cg;
        for (int c = 0; c < q.cg; c++) {
            if (dw) dw[c0 + c] += part[q.cg + c];
            if (db) db[c0 + c] += part[c];
        }
    }
}

static void layer_norm_forward(ag_graph *g, ag_node *n) { gn_forward(n, layer_norm_geom(n)); }
static void group_norm_forward(ag_graph *g, ag_node *n) { gn_forward(n, group_norm_geom(n)); }

static void layer_norm_backward(ag_graph *g, ag_node *n, unsigned need)
{
    gn_backward(g, n, need, layer_norm_geom(n));
}

static void group_norm_backward(ag_graph *g, ag_node *n, unsigned need)
{
    gn_backward(g, n, need, group_norm_geom(n));
}

const ag_op_def ag_def_layer_norm = {.name = "layer_norm", .min_src = 1, .max_src = 3,
                                     .flags = AG_DEF_BW_ASSIGN | AG_DEF_EPILOGUE,
                                     .infer = layer_norm_infer, .forward = layer_norm_forward,
                                     .backward = layer_norm_backward};
const ag_op_def ag_def_group_norm = {.name = "group_norm", .min_src = 1, .max_src = 3,
                                     .flags = AG_DEF_BW_ASSIGN | AG_DEF_EPILOGUE,
                                     .infer = group_norm_infer, .forward = group_norm_forward,
                                     .backward = group_norm_backward};

/* ----------------------------------------------------------- batch_norm -- */

/* Sources: x [N, C, ...], weight, bias, running_mean, running_var (all [C]); eps f[0],
 * momentum f[1]. While the graph is training, each channel is normalized with its
 * batch statistics, and the running ones move towards them:
 *   running = (1 - momentum) * running + momentum * batch,
 * with the unbiased variance for running_var, as torch.nn.BatchNorm does. Evaluation
 * normalizes with the running statistics. aux: mean[C] | rstd[C], whichever were used.
 * As with dropout, the graph must not switch modes between a forward and its backward.
 * The running statistics get no gradient. */

static const char *const bn_names[] = {"weight", "bias", "running_mean", "running_var"};

static int batch_norm_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    if (x->shape.ndim < 2)
        return ag_errorf(err, n->loc, "batch_norm: the input must be [N, C, ...], got %s",
                         AX_SHAPE(x));
    if (!(n->f[1] >= 0 && n->f[1] <= 1))
        return ag_errorf(err, n->loc, "batch_norm: momentum %g is outside [0, 1]", n->f[1]);
    if (nm_check_vectors(n, 1, bn_names, x->shape.d[1], err) != AG_OK) return AG_ERR;
    n->shape = x->shape;
    n->batched = x->batched;
    n->aux_numel = 2 * (int64_t)x->shape.d[1];
    return AG_OK;
}

/* Channel c's values are the n runs of s at (i * C + c) * S. */
static void bn_batch_stats(ag_graph *g, ag_node *n, nm_view v)
{
    const float *x = n->src[0]->data;
    float *mean = n->aux, *rstd = n->aux + v.c;
    float *run_mean = n->src[3]->data, *run_var = n->src[4]->data, mom = n->f[1];
    double count = (double)(v.n * v.s);
    for (int c = 0; c < v.c; c++) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < v.n; i++) s += nm_sum(x + (i * v.c + c) * v.s, v.s);
        float m = (float)(s / count);
        for (int64_t i = 0; i < v.n; i++) ss += nm_sum_sq(x + (i * v.c + c) * v.s, v.s, m);
        mean[c] = m;
        rstd[c] = 1.0f / sqrtf((float)(ss / count) + n->f[0]);
        run_mean[c] = (1 - mom) * run_mean[c] + mom * m;
        run_var[c] = (1 - mom) * run_var[c] + mom * (float)(ss / (count - 1));
    }
}

static void batch_norm_forward(ag_graph *g, ag_node *n)
{
    nm_view v = nm_channels_second(&n->src[0]->shape);
    float *mean = n->aux, *rstd = n->aux + v.c;
    if (g->training) {
        if (v.n * v.s < 2) {
            ag_fail(g, n, "batch_norm: training needs more than one value per channel, got "
                    "input %s", AX_SHAPE(n->src[0]));
            return;
        }
        bn_batch_stats(g, n, v);
    } else {
        for (int c = 0; c < v.c; c++) {
            mean[c] = n->src[3]->data[c];
            rstd[c] = 1.0f / sqrtf(n->src[4]->data[c] + n->f[0]);
        }
    }
    const float *w = n->src[1]->data, *b = n->src[2]->data;
    for (int64_t i = 0; i < v.n; i++)
        for (int c = 0; c < v.c; c++) {
            float scale = rstd[c] * w[c], shift = b[c] - mean[c] * scale;
            const float *xc = n->src[0]->data + (i * v.c + c) * v.s;
            float *yc = n->data + (i * v.c + c) * v.s;
            for (int64_t j = 0; j < v.s; j++) yc[j] = xc[j] * scale + shift;
        }
}

/* In evaluation the statistics are constants: dx = dy * weight * rstd. While training
 * the mean and variance depend on every x of the channel: the formula at the top. */
static void batch_norm_backward(ag_graph *g, ag_node *n, unsigned need)
{
    nm_view v = nm_channels_second(&n->src[0]->shape);
    const float *mean = n->aux, *rstd = n->aux + v.c, *w = n->src[1]->data;
    const float *x = n->src[0]->data;
    double count = (double)(v.n * v.s);
    for (int c = 0; c < v.c; c++) {
        float m = mean[c], r = rstd[c];
        double sd = 0, sdx = 0;     /* sums of dy and dy * xhat */
        for (int64_t i = 0; i < v.n; i++) {
            const float *xc = x + (i * v.c + c) * v.s, *dyc = n->grad + (i * v.c + c) * v.s;
            float rd = 0, rdx = 0;
            for (int64_t j = 0; j < v.s; j++) {
                rd += dyc[j];
                rdx += dyc[j] * (xc[j] - m) * r;
            }
            sd += rd;
            sdx += rdx;
        }
        if (need & 2u) n->src[1]->grad[c] += (float)sdx;
        if (need & 4u) n->src[2]->grad[c] += (float)sd;
        if (!(need & 1u)) continue;
        float md = g->training ? (float)(w[c] * sd / count) : 0.0f;
        float mdx = g->training ? (float)(w[c] * sdx / count) : 0.0f;
        for (int64_t i = 0; i < v.n; i++) {
            const float *xc = x + (i * v.c + c) * v.s, *dyc = n->grad + (i * v.c + c) * v.s;
            float *dxc = n->src[0]->grad + (i * v.c + c) * v.s;
            for (int64_t j = 0; j < v.s; j++)
                dxc[j] += r * (dyc[j] * w[c] - md - (xc[j] - m) * r * mdx);
        }
    }
}

const ag_op_def ag_def_batch_norm = {.name = "batch_norm", .min_src = 5, .max_src = 5,
                                     .infer = batch_norm_infer, .forward = batch_norm_forward,
                                     .backward = batch_norm_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_layer_norm(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, float eps)
{
    AG_ASSERT(w || !b);
    return ag_new(g, AG_OP_LAYER_NORM, 1 + !!w + !!b, (ag_node *const[]){x, w, b}, BD_F(eps), NULL);
}

ag_node *ag_group_norm(ag_graph *g, ag_node *x, int groups, ag_node *w, ag_node *b, float eps)
{
    AG_ASSERT(w || !b);
    return ag_new(g, AG_OP_GROUP_NORM, 1 + !!w + !!b, (ag_node *const[]){x, w, b}, BD_F(eps),
                  BD_I(groups));
}

ag_node *ag_batch_norm(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, ag_node *running_mean,
                       ag_node *running_var, float eps, float momentum)
{
    return ag_new(g, AG_OP_BATCH_NORM, 5, (ag_node *const[]){x, w, b, running_mean, running_var},
                  BD_F(eps, momentum), NULL);
}
