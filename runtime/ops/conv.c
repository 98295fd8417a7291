/*
 * conv.c — conv2d and conv_transpose2d on NCHW tensors, through im2col and sgemm.
 *
 * Letters, for the whole file: N images in the batch; the "image" side of a convolution
 * is the tensor whose k x k patches are unfolded (conv2d's input, conv_transpose2d's
 * output), C channels, H x W; the "grid" side has one position per kernel placement,
 * GH x GW (conv2d's output, conv_transpose2d's input), CG channels. The column matrix of
 * one image is [K, P]: K = C kh kw rows (c, i, j), P = GH GW columns (oy, ox), and
 *
 *     col[(c kh + i) kw + j][oy GW + ox] = img[c][oy sh - ph + i][ox sw - pw + j]
 *
 * (0 outside the image). conv2d is y = W col; conv_transpose2d is its adjoint, the
 * col2im (fold, +=) of W^T x.
 *
 * One image's sgemm is small (a 7x7 grid has P = 49 columns) and BLAS threads spend
 * more time waking than working on it, so a chunk of G images goes through one sgemm:
 * their column matrices side by side, [K, G P], and the grid side gathered from
 * [G, CG, P] to [CG, G P] (a copy of P floats per row, cheap next to the unfolding).
 * G is as large as a fixed scratch budget allows, so the scratch (n->aux: the columns,
 * then the gathered grid) is planned with the graph and bounded whatever the batch:
 * a whole batch of column matrices would be k^2 times the input. Backward rebuilds the
 * columns rather than keeping them from forward, for the same reason.
 *
 * With the oneDNN backend, oneDNN's primitives take both instead, faster on these
 * shapes (runtime/ops/conv_onednn.c); this path runs when they cannot.
 *
 * Parameters: i[0], i[1] stride (h, w); i[2], i[3] padding (h, w); conv_transpose2d
 * also i[4], i[5] output_padding (h, w). Weights have PyTorch's layouts: conv2d
 * [C_out, C_in, kh, kw], conv_transpose2d [C_in, C_out, kh, kw].
 */
#include <string.h>

#include "aigc/graph.h"
#include "aigc/pool.h"
#include "axis.h"
#include "conv_onednn.h"

/* Floats of scratch per convolution call: 8 MB, in one buffer that all the convolutions
 * of a graph share (AG_DEF_AUX_SCRATCH). In specs/ddpm.yaml's U-Net that is 4 to 8
 * images per sgemm at 28x28, 16 to 38 at 14x14 and 7x7, where it matters most. */
enum { CV_SCRATCH_FLOATS = 1 << 21 };

typedef struct cv_geom {
    int c, h, w;    /* the image side */
    int gh, gw;     /* the grid side */
    int kh, kw, sh, sw, ph, pw;
    int cg;         /* the grid side's channels */
} cv_geom;

static int64_t cv_rows(const cv_geom *q) { return (int64_t)q->c * q->kh * q->kw; }
static int64_t cv_cols(const cv_geom *q) { return (int64_t)q->gh * q->gw; }

/* Images per sgemm for a batch of nb: as many as the budget holds, at least one. */
static int cv_group(const cv_geom *q, int nb)
{
    int64_t g = CV_SCRATCH_FLOATS / ((cv_rows(q) + q->cg) * cv_cols(q));
    if (g < 1) g = 1;
    return (int)(g < nb ? g : nb);
}

static int64_t cv_scratch(const cv_geom *q, int nb)
{
    return (cv_rows(q) + q->cg) * cv_cols(q) * cv_group(q, nb);
}

/* The grid positions [*lo, *hi) whose image coordinate o * stride + off lies in
 * [0, len): the rest of a row of col is padding. */
static void cv_span(int off, int stride, int len, int grid, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int last = len - 1 - off;
    int b = last < 0 ? 0 : last / stride + 1;
    if (b > grid) b = grid;
    *lo = a < b ? a : b;
    *hi = b;
}

/* img [C, H, W] -> col [K, P], whose rows lie ld floats apart. */
static void cv_im2col(const cv_geom *q, const float *img, float *col, int64_t ld)
{
    for (int c = 0; c < q->c; c++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                float *row = col + ((int64_t)(c * q->kh + i) * q->kw + j) * ld;
                int off = j - q->pw, lo, hi;
                cv_span(off, q->sw, q->w, q->gw, &lo, &hi);
                for (int oy = 0; oy < q->gh; oy++) {
                    float *r = row + (int64_t)oy * q->gw;
                    int iy = oy * q->sh - q->ph + i;
                    if (iy < 0 || iy >= q->h) {
                        memset(r, 0, (size_t)q->gw * sizeof *r);
                        continue;
                    }
                    const float *src = img + ((int64_t)c * q->h + iy) * q->w + off;
                    for (int ox = 0; ox < lo; ox++) r[ox] = 0;
                    /* Stride 1, the common case, is a plain copy: several times faster. */
                    if (q->sw == 1)
                        memcpy(r + lo, src + lo, (size_t)(hi - lo) * sizeof *r);
                    else
                        for (int ox = lo; ox < hi; ox++) r[ox] = src[ox * q->sw];
                    for (int ox = hi; ox < q->gw; ox++) r[ox] = 0;
                }
            }
}

/* col [K, P] (rows ld apart) -> img [C, H, W], accumulating: the adjoint of cv_im2col. */
static void cv_col2im(const cv_geom *q, const float *col, int64_t ld, float *img)
{
    for (int c = 0; c < q->c; c++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                const float *row = col + ((int64_t)(c * q->kh + i) * q->kw + j) * ld;
                int off = j - q->pw, lo, hi;
                cv_span(off, q->sw, q->w, q->gw, &lo, &hi);
                for (int oy = 0; oy < q->gh; oy++) {
                    int iy = oy * q->sh - q->ph + i;
                    if (iy < 0 || iy >= q->h) continue;
                    const float *r = row + (int64_t)oy * q->gw;
                    float *dst = img + ((int64_t)c * q->h + iy) * q->w + off;
                    if (q->sw == 1)
                        for (int ox = lo; ox < hi; ox++) dst[ox] += r[ox];
                    else
                        for (int ox = lo; ox < hi; ox++) dst[ox * q->sw] += r[ox];
                }
            }
}

/* One chunk of gn images: the unfolded image side of each, side by side, or folded back.
 * Each image has its own columns of col and its own image, so the images are spread
 * over the pool and the bits do not depend on the thread count. */
typedef struct cv_chunk {
    const cv_geom *q;
    const float *src;
    float *dst;
    int gn;
} cv_chunk;

static void im2col_images(void *ctx, int64_t lo, int64_t hi)
{
    const cv_chunk *j = ctx;
    int64_t P = cv_cols(j->q), is = (int64_t)j->q->c * j->q->h * j->q->w;
    for (int64_t g = lo; g < hi; g++)
        cv_im2col(j->q, j->src + g * is, j->dst + g * P, j->gn * P);
}

static void col2im_images(void *ctx, int64_t lo, int64_t hi)
{
    const cv_chunk *j = ctx;
    int64_t P = cv_cols(j->q), is = (int64_t)j->q->c * j->q->h * j->q->w;
    for (int64_t g = lo; g < hi; g++)
        cv_col2im(j->q, j->src + g * P, j->gn * P, j->dst + g * is);
}

/* Images a piece of the pool should hold: at least 2^15 column values, or waking a
 * second thread costs more than it saves. */
static int64_t cv_grain(const cv_geom *q)
{
    return tp_items_holding(1 << 15, cv_rows(q) * cv_cols(q));
}

static void cv_im2col_chunk(const cv_geom *q, const float *img, int gn, float *col)
{
    tp_for_items(gn, cv_grain(q), im2col_images, &(cv_chunk){q, img, col, gn});
}

static void cv_col2im_chunk(const cv_geom *q, const float *col, int gn, float *img)
{
    tp_for_items(gn, cv_grain(q), col2im_images, &(cv_chunk){q, col, img, gn});
}

/* The grid side of gn images, t [gn, CG, P] -> grid [CG, gn P]. */
static void cv_gather(const cv_geom *q, const float *t, int gn, float *grid)
{
    int64_t P = cv_cols(q);
    for (int g = 0; g < gn; g++)
        for (int c = 0; c < q->cg; c++)
            memcpy(grid + (c * (int64_t)gn + g) * P, t + (g * (int64_t)q->cg + c) * P,
                   (size_t)P * sizeof *grid);
}

/* grid [CG, gn P] -> t [gn, CG, P]: assigned, or with add accumulated. */
static void cv_scatter(const cv_geom *q, const float *grid, int gn, float *t, int add)
{
    int64_t P = cv_cols(q);
    for (int g = 0; g < gn; g++)
        for (int c = 0; c < q->cg; c++) {
            const float *src = grid + (c * (int64_t)gn + g) * P;
            float *dst = t + (g * (int64_t)q->cg + c) * P;
            if (add)
                for (int64_t p = 0; p < P; p++) dst[p] += src[p];
            else
                memcpy(dst, src, (size_t)P * sizeof *dst);
        }
}

/* Every plane [P] of y [N, C, P] starts as its channel's bias, or 0. */
static void cv_fill_bias(float *y, const float *bias, int64_t nplanes, int c, int64_t P)
{
    for (int64_t t = 0; t < nplanes; t++) {
        float v = bias ? bias[t % c] : 0.0f;
        for (int64_t p = 0; p < P; p++) y[t * P + p] = v;
    }
}

/* db[c] += the sum of dy's planes of channel c. */
static void cv_bias_grad(float *db, const float *dy, int64_t nplanes, int c, int64_t P)
{
    for (int64_t t = 0; t < nplanes; t++) {
        float s = 0;
        for (int64_t p = 0; p < P; p++) s += dy[t * P + p];
        db[t % c] += s;
    }
}

/* The convolution of node n for oneDNN: x [N, C_in, ...] -> n [N, C_out, ...]. */
static cvd_conv cvd_of(const ag_node *n, int transposed)
{
    const ag_shape *x = &n->src[0]->shape, *w = &n->src[1]->shape;
    return (cvd_conv){.transposed = transposed, .bias = n->nsrc > 2,
                      .n = x->d[0], .cin = x->d[1], .ih = x->d[2], .iw = x->d[3],
                      .cout = n->shape.d[1], .oh = n->shape.d[2], .ow = n->shape.d[3],
                      .kh = w->d[2], .kw = w->d[3], .sh = n->i[0], .sw = n->i[1],
                      .ph = n->i[2], .pw = n->i[3],
                      .oph = transposed ? n->i[4] : 0, .opw = transposed ? n->i[5] : 0};
}

/* The gradients backward asks for (need: 1 input, 2 weight, 4 bias), by oneDNN when it
 * takes the call. The weight's and bias's are sums over slices of the batch, added into,
 * so cleared first when assigned; oneDNN writes an assigned input gradient itself, the
 * im2col path adds into it, so it is cleared first there. */
static int cv_grads(ag_graph *g, ag_node *n, int transposed, unsigned need)
{
    unsigned assign = ag_bw_clear(g, n, 6u);
    cvd_conv c = cvd_of(n, transposed);
    float *dx = need & 1u ? n->src[0]->grad : NULL, *dw = need & 2u ? n->src[1]->grad : NULL;
    float *db = need & 4u ? n->src[2]->grad : NULL;
    if (cvd_backward(&c, n->src[0]->data, n->src[1]->data, n->grad, dx, (assign & 1u) != 0, dw, db))
        return 1;
    ag_bw_clear(g, n, 1u);
    return 0;
}

/* ------------------------------------------------------------ shape checks -- */

/* Checks what conv2d and conv_transpose2d share; the weight's layout differs in which
 * of its first two dims is the input's channels. */
static int cv_check_common(ag_node *n, int transposed, ag_error *err)
{
    const ag_node *x = n->src[0], *w = n->src[1], *b = n->nsrc > 2 ? n->src[2] : NULL;
    const char *op = ax_op_name(n);
    if (x->shape.ndim != 4)
        return ag_errorf(err, n->loc, "%s: the input must be 4-D [N, C, H, W], got %s", op,
                         AX_SHAPE(x));
    if (w->shape.ndim != 4)
        return ag_errorf(err, n->loc, "%s: the weight must be 4-D %s, got %s", op,
                         transposed ? "[C_in, C_out, kH, kW]" : "[C_out, C_in, kH, kW]",
                         AX_SHAPE(w));
    if (x->shape.d[1] != w->shape.d[transposed ? 0 : 1])
        return ag_errorf(err, n->loc, "%s: input has %d channels but the weight expects %d",
                         op, x->shape.d[1], w->shape.d[transposed ? 0 : 1]);
    int c_out = w->shape.d[transposed ? 1 : 0];
    if (b && (b->shape.ndim != 1 || b->shape.d[0] != c_out))
        return ag_errorf(err, n->loc,
                         "%s: the bias has shape %s but the weight has %d output channels", op,
                         AX_SHAPE(b), c_out);
    static const char *const what[] = {"stride", "stride", "padding", "padding",
                                       "output_padding", "output_padding"};
    for (int k = 0; k < (transposed ? 6 : 4); k++) {
        int least = k < 2 ? 1 : 0;
        if (n->i[k] < least)
            return ag_errorf(err, n->loc, "%s: %s must be at least %d, got %d", op, what[k],
                             least, n->i[k]);
    }
    n->batched = x->batched;
    return AG_OK;
}

/* ------------------------------------------------------------------ conv2d -- */

static cv_geom conv_geom(const ag_node *n)
{
    const ag_shape *x = &n->src[0]->shape, *w = &n->src[1]->shape;
    return (cv_geom){.c = x->d[1], .h = x->d[2], .w = x->d[3],
                     .gh = n->shape.d[2], .gw = n->shape.d[3],
                     .kh = w->d[2], .kw = w->d[3],
                     .sh = n->i[0], .sw = n->i[1], .ph = n->i[2], .pw = n->i[3],
                     .cg = w->d[0]};
}

static int conv_infer(ag_node *n, ag_error *err)
{
    if (cv_check_common(n, 0, err) != AG_OK) return AG_ERR;
    const ag_shape *x = &n->src[0]->shape, *w = &n->src[1]->shape;
    int hp = x->d[2] + 2 * n->i[2], wp = x->d[3] + 2 * n->i[3];
    if (hp < w->d[2] || wp < w->d[3])
        return ag_errorf(err, n->loc,
                         "conv2d: the %dx%d kernel is larger than the padded input, %dx%d",
                         w->d[2], w->d[3], hp, wp);
    n->shape = ag_shape4(x->d[0], w->d[0], (hp - w->d[2]) / n->i[0] + 1,
                         (wp - w->d[3]) / n->i[1] + 1);
    cv_geom q = conv_geom(n);
    n->aux_numel = cv_scratch(&q, x->d[0]);
    return AG_OK;
}

/* Per chunk: y [C_out, gn P] = W [C_out, K] col [K, gn P] (+ bias), scattered to y. */
static void conv_forward(ag_graph *g, ag_node *n)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    cv_geom q = conv_geom(n);
    int nb = x->shape.d[0], G = cv_group(&q, nb);
    int64_t K = cv_rows(&q), P = cv_cols(&q), xs = (int64_t)q.c * q.h * q.w;
    const float *bias = n->nsrc > 2 ? n->src[2]->data : NULL;
    cvd_conv c = cvd_of(n, 0);
    if (cvd_forward(&c, x->data, w->data, bias, n->data)) return;
    float *col = n->aux, *grid = n->aux + K * P * G;
    for (int b0 = 0; b0 < nb; b0 += G) {
        int gn = nb - b0 < G ? nb - b0 : G;
        int ld = (int)(gn * P);
        cv_im2col_chunk(&q, x->data + b0 * xs, gn, col);
        if (bias) cv_fill_bias(grid, bias, q.cg, q.cg, ld);
        ag_sgemm(0, 0, q.cg, ld, (int)K, 1.0f, w->data, (int)K, col, ld, bias ? 1.0f : 0.0f,
                 grid, ld);
        cv_scatter(&q, grid, gn, n->data + b0 * q.cg * P, 0);
    }
}

/* Per chunk, with dy gathered to [C_out, gn P]: dW += dy col^T (col rebuilt), then the
 * column scratch takes W^T dy, folded into dx. db += the sums of dy. */
static void conv_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (cv_grads(g, n, 0, need)) return;
    const ag_node *x = n->src[0], *w = n->src[1];
    cv_geom q = conv_geom(n);
    int nb = x->shape.d[0], G = cv_group(&q, nb);
    int64_t K = cv_rows(&q), P = cv_cols(&q), xs = (int64_t)q.c * q.h * q.w;
    float *col = n->aux, *grid = n->aux + K * P * G;
    for (int b0 = 0; b0 < nb && (need & 3u); b0 += G) {
        int gn = nb - b0 < G ? nb - b0 : G;
        int ld = (int)(gn * P);
        cv_gather(&q, n->grad + b0 * q.cg * P, gn, grid);
        if (need & 2u) {
            cv_im2col_chunk(&q, x->data + b0 * xs, gn, col);
            ag_sgemm(0, 1, q.cg, (int)K, ld, 1.0f, grid, ld, col, ld, 1.0f, w->grad, (int)K);
        }
        if (need & 1u) {
            ag_sgemm(1, 0, (int)K, ld, q.cg, 1.0f, w->data, (int)K, grid, ld, 0.0f, col, ld);
            cv_col2im_chunk(&q, col, gn, x->grad + b0 * xs);
        }
    }
    if (need & 4u) cv_bias_grad(n->src[2]->grad, n->grad, (int64_t)nb * q.cg, q.cg, P);
}

const ag_op_def ag_def_conv2d = {.name = "conv2d", .min_src = 2, .max_src = 3,
                                 .flags = AG_DEF_AUX_SCRATCH | AG_DEF_BW_ASSIGN,
                                 .infer = conv_infer, .forward = conv_forward,
                                 .backward = conv_backward};

/* -------------------------------------------------------- conv_transpose2d -- */

static cv_geom convt_geom(const ag_node *n)
{
    const ag_shape *x = &n->src[0]->shape, *w = &n->src[1]->shape;
    return (cv_geom){.c = w->d[1], .h = n->shape.d[2], .w = n->shape.d[3],
                     .gh = x->d[2], .gw = x->d[3],
                     .kh = w->d[2], .kw = w->d[3],
                     .sh = n->i[0], .sw = n->i[1], .ph = n->i[2], .pw = n->i[3],
                     .cg = w->d[0]};
}

static int convt_infer(ag_node *n, ag_error *err)
{
    if (cv_check_common(n, 1, err) != AG_OK) return AG_ERR;
    const ag_shape *x = &n->src[0]->shape, *w = &n->src[1]->shape;
    /* As PyTorch: a larger output_padding would add rows no input position reaches. */
    for (int k = 0; k < 2; k++)
        if (n->i[4 + k] >= n->i[k])
            return ag_errorf(err, n->loc,
                             "conv_transpose2d: output_padding %d must be smaller than the "
                             "stride %d", n->i[4 + k], n->i[k]);
    int ho = (x->d[2] - 1) * n->i[0] - 2 * n->i[2] + w->d[2] + n->i[4];
    int wo = (x->d[3] - 1) * n->i[1] - 2 * n->i[3] + w->d[3] + n->i[5];
    if (ho < 1 || wo < 1)
        return ag_errorf(err, n->loc,
                         "conv_transpose2d: the output would be %dx%d: the padding %dx%d is "
                         "too large for the %dx%d input and %dx%d kernel",
                         ho, wo, n->i[2], n->i[3], x->d[2], x->d[3], w->d[2], w->d[3]);
    n->shape = ag_shape4(x->d[0], w->d[1], ho, wo);
    cv_geom q = convt_geom(n);
    n->aux_numel = cv_scratch(&q, x->d[0]);
    return AG_OK;
}

/* Per chunk, with x gathered to [C_in, gn P]: y += col2im(W^T x), W seen as [C_in, K];
 * y starts as the bias. */
static void convt_forward(ag_graph *g, ag_node *n)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    cv_geom q = convt_geom(n);
    int nb = x->shape.d[0], G = cv_group(&q, nb);
    int64_t K = cv_rows(&q), P = cv_cols(&q), ys = (int64_t)q.c * q.h * q.w;
    const float *bias = n->nsrc > 2 ? n->src[2]->data : NULL;
    cvd_conv c = cvd_of(n, 1);
    if (cvd_forward(&c, x->data, w->data, bias, n->data)) return;
    float *col = n->aux, *grid = n->aux + K * P * G;
    cv_fill_bias(n->data, bias, (int64_t)nb * q.c, q.c, (int64_t)q.h * q.w);
    for (int b0 = 0; b0 < nb; b0 += G) {
        int gn = nb - b0 < G ? nb - b0 : G;
        int ld = (int)(gn * P);
        cv_gather(&q, x->data + b0 * q.cg * P, gn, grid);
        ag_sgemm(1, 0, (int)K, ld, q.cg, 1.0f, w->data, (int)K, grid, ld, 0.0f, col, ld);
        cv_col2im_chunk(&q, col, gn, n->data + b0 * ys);
    }
}

/* Per chunk, with col = im2col(dy): dW += x col^T (x gathered to [C_in, gn P]), then
 * the grid scratch takes W col, scattered into dx. db += the sums of dy. */
static void convt_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (cv_grads(g, n, 1, need)) return;
    const ag_node *x = n->src[0], *w = n->src[1];
    cv_geom q = convt_geom(n);
    int nb = x->shape.d[0], G = cv_group(&q, nb);
    int64_t K = cv_rows(&q), P = cv_cols(&q), ys = (int64_t)q.c * q.h * q.w;
    float *col = n->aux, *grid = n->aux + K * P * G;
    for (int b0 = 0; b0 < nb && (need & 3u); b0 += G) {
        int gn = nb - b0 < G ? nb - b0 : G;
        int ld = (int)(gn * P);
        cv_im2col_chunk(&q, n->grad + b0 * ys, gn, col);
        if (need & 2u) {
            cv_gather(&q, x->data + b0 * q.cg * P, gn, grid);
            ag_sgemm(0, 1, q.cg, (int)K, ld, 1.0f, grid, ld, col, ld, 1.0f, w->grad, (int)K);
        }
        if (need & 1u) {
            ag_sgemm(0, 0, q.cg, ld, (int)K, 1.0f, w->data, (int)K, col, ld, 0.0f, grid, ld);
            cv_scatter(&q, grid, gn, x->grad + b0 * q.cg * P, 1);
        }
    }
    if (need & 4u)
        cv_bias_grad(n->src[2]->grad, n->grad, (int64_t)nb * q.c, q.c, (int64_t)q.h * q.w);
}

const ag_op_def ag_def_conv_transpose2d = {.name = "conv_transpose2d", .min_src = 2,
                                           .max_src = 3,
                                           .flags = AG_DEF_AUX_SCRATCH | AG_DEF_BW_ASSIGN,
                                           .infer = convt_infer,
                                           .forward = convt_forward,
                                           .backward = convt_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_conv2d(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, int stride, int padding)
{
    return ag_new(g, AG_OP_CONV2D, b ? 3 : 2, (ag_node *const[]){x, w, b}, NULL,
                  (const int[AG_MAX_IP]){stride, stride, padding, padding});
}

ag_node *ag_conv_transpose2d(ag_graph *g, ag_node *x, ag_node *w, ag_node *b, int stride,
                             int padding, int output_padding)
{
    return ag_new(g, AG_OP_CONV_TRANSPOSE2D, b ? 3 : 2, (ag_node *const[]){x, w, b}, NULL,
                  (const int[AG_MAX_IP]){stride, stride, padding, padding, output_padding,
                                         output_padding});
}
