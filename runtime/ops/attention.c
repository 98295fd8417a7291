/*
 * attention.c — causal multi-head self-attention over a fused qkv projection, as
 * nanoGPT's CausalSelfAttention after c_attn and before c_proj.
 *
 * Dimension letters, for the whole file: B batch, T time, C channels, H heads of
 * D = C / H channels each. qkv is [B, T, 3C] with q | k | v along the last dim; head h
 * of q is columns [h D, (h + 1) D) of the q part, so each head's q, k and v are [T, D]
 * matrices with row stride 3C, and sgemm reads them in place. Per (b, h):
 *   P = softmax(q k^T / sqrt(D)) with P[t][j] = 0 for j > t,   y = P v,
 * written to columns [h D, (h + 1) D) of y [B, T, C].
 *
 * The (b, h) pairs are independent, so they are spread over the pool, each on one thread
 * with its sgemms whole: at char-gpt's T = 64 and D = 32 each is far too small to cut,
 * and uncut they give the same bits at every thread count.
 *
 * aux: P for every (b, h), [B, H, T, T], kept for backward, then a [T, T] scratch per
 * thread of the pool.
 */
#include <math.h>

#include "aigc/graph.h"
#include "aigc/pool.h"
#include "axis.h"
#include "vmath.h"

typedef struct at_geom {
    int b, t, c, h, d;
} at_geom;

static at_geom at_geom_of(const ag_node *n)
{
    const ag_shape *s = &n->src[0]->shape;
    int c = s->d[2] / 3;
    return (at_geom){s->d[0], s->d[1], c, n->i[0], c / n->i[0]};
}

static int attention_infer(ag_node *n, ag_error *err)
{
    const ag_node *qkv = n->src[0];
    if (qkv->shape.ndim != 3)
        return ag_errorf(err, n->loc, "causal_attention: qkv must be 3-D [B, T, 3 * C], got %s",
                         AX_SHAPE(qkv));
    int c3 = qkv->shape.d[2], heads = n->i[0];
    if (c3 % 3 != 0)
        return ag_errorf(err, n->loc, "causal_attention: the last dimension of qkv %s is not "
                         "3 * C", AX_SHAPE(qkv));
    if (heads < 1 || (c3 / 3) % heads != 0)
        return ag_errorf(err, n->loc, "causal_attention: C = %d does not split into %d heads",
                         c3 / 3, heads);
    n->shape = ag_shape3(qkv->shape.d[0], qkv->shape.d[1], c3 / 3);
    n->batched = qkv->batched;
    int64_t tt = (int64_t)qkv->shape.d[1] * qkv->shape.d[1];
    n->aux_numel = ((int64_t)qkv->shape.d[0] * heads + TP_MAX_THREADS) * tt;
    return AG_OK;
}

/* Row t of the scores: masked, then softmax over j <= t in place. The exponentials are
 * a loop of their own so that it vectorizes; the sum keeps its order. */
static void at_causal_softmax_row(float *row, int t, int len)
{
    float m = row[0], s = 0;
    for (int j = 1; j <= t; j++) m = row[j] > m ? row[j] : m;
    for (int j = 0; j <= t; j++) row[j] = vm_expf(row[j] - m);
    for (int j = 0; j <= t; j++) s += row[j];
    float inv = 1.0f / s;
    for (int j = 0; j <= t; j++) row[j] *= inv;
    for (int j = t + 1; j < len; j++) row[j] = 0.0f;
}

/* Pairs [lo, hi) of (b, h), pair u = b H + h. */
static void attention_fw_pairs(void *ctx, int64_t lo, int64_t hi)
{
    const ag_node *n = ctx;
    at_geom q = at_geom_of(n);
    int ld = 3 * q.c;
    float scale = 1.0f / sqrtf((float)q.d);
    for (int64_t u = lo; u < hi; u++) {
        int b = (int)(u / q.h), h = (int)(u % q.h);
        const float *qp = n->src[0]->data + (int64_t)b * q.t * ld + h * q.d;
        const float *kp = qp + q.c, *vp = qp + 2 * q.c;
        float *p = n->aux + u * q.t * q.t;
        ag_sgemm_serial(0, 1, q.t, q.t, q.d, scale, qp, ld, kp, ld, 0.0f, p, q.t);
        for (int t = 0; t < q.t; t++) at_causal_softmax_row(p + (int64_t)t * q.t, t, q.t);
        ag_sgemm_serial(0, 0, q.t, q.d, q.t, 1.0f, p, q.t, vp, ld, 0.0f,
                        n->data + (int64_t)b * q.t * q.c + h * q.d, q.c);
    }
}

static void attention_forward(ag_graph *g, ag_node *n)
{
    at_geom q = at_geom_of(n);
    tp_for_items((int64_t)q.b * q.h, 1, attention_fw_pairs, n);
}

/* dv = P^T dy;  dP = dy v^T;  dS = P * (dP - rowsum(dP * P));
 * dq = dS k / sqrt(D);  dk = dS^T q / sqrt(D). dS is 0 where the mask put P = 0. */
static void attention_bw_pairs(void *ctx, int64_t lo, int64_t hi)
{
    const ag_node *n = ctx;
    at_geom q = at_geom_of(n);
    int ld = 3 * q.c;
    float scale = 1.0f / sqrtf((float)q.d);
    float *ds = n->aux + ((int64_t)q.b * q.h + tp_self()) * q.t * q.t;
    for (int64_t u = lo; u < hi; u++) {
        int b = (int)(u / q.h), h = (int)(u % q.h);
        int64_t at = (int64_t)b * q.t * ld + h * q.d;
        const float *qp = n->src[0]->data + at, *kp = qp + q.c, *vp = qp + 2 * q.c;
        float *dq = n->src[0]->grad + at, *dk = dq + q.c, *dv = dq + 2 * q.c;
        const float *p = n->aux + u * q.t * q.t;
        const float *dy = n->grad + (int64_t)b * q.t * q.c + h * q.d;
        ag_sgemm_serial(1, 0, q.t, q.d, q.t, 1.0f, p, q.t, dy, q.c, 1.0f, dv, ld);
        ag_sgemm_serial(0, 1, q.t, q.t, q.d, 1.0f, dy, q.c, vp, ld, 0.0f, ds, q.t);
        for (int t = 0; t < q.t; t++) {
            const float *pr = p + (int64_t)t * q.t;
            float *dr = ds + (int64_t)t * q.t, dot = 0;
            for (int j = 0; j <= t; j++) dot += pr[j] * dr[j];
            for (int j = 0; j <= t; j++) dr[j] = pr[j] * (dr[j] - dot);
            for (int j = t + 1; j < q.t; j++) dr[j] = 0.0f;
        }
        ag_sgemm_serial(0, 0, q.t, q.d, q.t, scale, ds, q.t, kp, ld, 1.0f, dq, ld);
        ag_sgemm_serial(1, 0, q.t, q.d, q.t, scale, ds, q.t, qp, ld, 1.0f, dk, ld);
    }
}

static void attention_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    at_geom q = at_geom_of(n);
    tp_for_items((int64_t)q.b * q.h, 1, attention_bw_pairs, n);
}

const ag_op_def ag_def_causal_attention = {
    .name = "causal_attention", .min_src = 1, .max_src = 1, .infer = attention_infer,
    .forward = attention_forward, .backward = attention_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_causal_attention(ag_graph *g, ag_node *qkv, int heads)
{
    return ag_new(g, AG_OP_CAUSAL_ATTENTION, 1, (ag_node *const[]){qkv}, NULL,
                  (const int[AG_MAX_IP]){heads});
}
