/*
 * conv.c — conv2d and conv_transpose2d on NCHW tensors, through im2col and sgemm.
 *
 * Letters, for the whole file: N images in the batch; the "image" side of a convolution
 * is the tensor whose k x k patches are unfolded (conv2d's input, conv_transpose2d's
 * output), C channels, H x W; the "grid" side has one position per kernel placement,
 * GH x GW (conv2d's output, conv_transpose2d's input). The column matrix of one image is
 * [K, P]: K = C kh kw rows (c, i, j), P = GH GW columns (oy, ox), and
 *
 *     col[(c kh + i) kw + j][oy GW + ox] = img[c][oy sh - ph + i][ox sw - pw + j]
 *
 * (0 outside the image). conv2d is y = W col; conv_transpose2d is its adjoint, the
 * col2im (fold, +=) of W^T x. So one image costs one sgemm either way, and the column
 * matrix of one image is the only scratch (n->aux), rebuilt in backward rather than
 * kept for the whole batch: a batch of column matrices would be k^2 times the input.
 * A 1x1 kernel with stride 1 and no padding needs no unfolding: col is the image.
 *
 * Parameters: i[0], i[1] stride (h, w); i[2], i[3] padding (h, w); conv_transpose2d
 * also i[4], i[5] output_padding (h, w). Weights have PyTorch's layouts: conv2d
 * [C_out, C_in, kh, kw], conv_transpose2d [C_in, C_out, kh, kw].
 */
#include <string.h>

#include "aigc/graph.h"
#include "axis.h"

typedef struct cv_geom {
    int c, h, w;    /* the image side */
    int gh, gw;     /* the grid side */
    int kh, kw, sh, sw, ph, pw;
} cv_geom;

static int64_t cv_rows(const cv_geom *q) { return (int64_t)q->c * q->kh * q->kw; }
static int64_t cv_cols(const cv_geom *q) { return (int64_t)q->gh * q->gw; }

static int cv_direct(const cv_geom *q)
{
    return q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0;
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

/* img [C, H, W] -> col [K, P]. */
static void cv_im2col(const cv_geom *q, const float *img, float *col)
{
    int64_t P = cv_cols(q);
    for (int c = 0; c < q->c; c++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                float *row = col + ((int64_t)(c * q->kh + i) * q->kw + j) * P;
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

/* col [K, P] -> img [C, H, W], accumulating: the adjoint of cv_im2col. */
static void cv_col2im(const cv_geom *q, const float *col, float *img)
{
    int64_t P = cv_cols(q);
    for (int c = 0; c < q->c; c++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                const float *row = col + ((int64_t)(c * q->kh + i) * q->kw + j) * P;
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
                     .sh = n->i[0], .sw = n->i[1], .ph = n->i[2], .pw = n->i[3]};
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
    n->aux_numel = cv_direct(&q) ? 0 : cv_rows(&q) * cv_cols(&q);
    return AG_OK;
}

/* y_n [C_out, P] = W [C_out, K] col_n [K, P] (+ bias). */
static void conv_forward(ag_graph *g, ag_node *n)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    cv_geom q = conv_geom(n);
    int nb = x->shape.d[0], c_out = w->shape.d[0];
    int64_t K = cv_rows(&q), P = cv_cols(&q), xs = (int64_t)q.c * q.h * q.w;
    const float *bias = n->nsrc > 2 ? n->src[2]->data : NULL;
    if (bias) cv_fill_bias(n->data, bias, (int64_t)nb * c_out, c_out, P);
    for (int b = 0; b < nb; b++) {
        const float *col = x->data + b * xs;
        if (!cv_direct(&q)) {
            cv_im2col(&q, col, n->aux);
            col = n->aux;
        }
        ag_sgemm(0, 0, c_out, (int)P, (int)K, 1.0f, w->data, (int)K, col, (int)P,
                 bias ? 1.0f : 0.0f, n->data + b * c_out * P, (int)P);
    }
}

/* dW += dy_n col_n^T; dx_n += col2im(W^T dy_n); db += sums of dy. The column matrix is
 * rebuilt for dW, then the same scratch holds W^T dy_n. */
static void conv_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    cv_geom q = conv_geom(n);
    int nb = x->shape.d[0], c_out = w->shape.d[0];
    int64_t K = cv_rows(&q), P = cv_cols(&q), xs = (int64_t)q.c * q.h * q.w;
    int direct = cv_direct(&q);
    for (int b = 0; b < nb; b++) {
        const float *dy = n->grad + b * c_out * P;
        if (need & 2u) {
            const float *col = x->data + b * xs;
            if (!direct) {
                cv_im2col(&q, col, n->aux);
                col = n->aux;
            }
            ag_sgemm(0, 1, c_out, (int)K, (int)P, 1.0f, dy, (int)P, col, (int)P, 1.0f,
                     w->grad, (int)K);
        }
        if (need & 1u) {
            float *dx = x->grad + b * xs;
            if (direct) {
                ag_sgemm(1, 0, (int)K, (int)P, c_out, 1.0f, w->data, (int)K, dy, (int)P, 1.0f,
                         dx, (int)P);
            } else {
                ag_sgemm(1, 0, (int)K, (int)P, c_out, 1.0f, w->data, (int)K, dy, (int)P, 0.0f,
                         n->aux, (int)P);
                cv_col2im(&q, n->aux, dx);
            }
        }
    }
    if (need & 4u) cv_bias_grad(n->src[2]->grad, n->grad, (int64_t)nb * c_out, c_out, P);
}

const ag_op_def ag_def_conv2d = {.name = "conv2d", .min_src = 2, .max_src = 3,
                                 .infer = conv_infer, .forward = conv_forward,
                                 .backward = conv_backward};

/* -------------------------------------------------------- conv_transpose2d -- */

static cv_geom convt_geom(const ag_node *n)
{
    const ag_shape *x = &n->src[0]->shape, *w = &n->src[1]->shape;
    return (cv_geom){.c = w->d[1], .h = n->shape.d[2], .w = n->shape.d[3],
                     .gh = x->d[2], .gw = x->d[3],
                     .kh = w->d[2], .kw = w->d[3],
                     .sh = n->i[0], .sw = n->i[1], .ph = n->i[2], .pw = n->i[3]};
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
    n->aux_numel = cv_direct(&q) ? 0 : cv_rows(&q) * cv_cols(&q);
    return AG_OK;
}

/* y_n [C_out, H, W] = col2im(W^T x_n) (+ bias), W seen as [C_in, K]. */
static void convt_forward(ag_graph *g, ag_node *n)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    cv_geom q = convt_geom(n);
    int nb = x->shape.d[0], c_in = w->shape.d[0];
    int64_t K = cv_rows(&q), P = cv_cols(&q), ys = (int64_t)q.c * q.h * q.w;
    const float *bias = n->nsrc > 2 ? n->src[2]->data : NULL;
    cv_fill_bias(n->data, bias, (int64_t)nb * q.c, q.c, (int64_t)q.h * q.w);
    for (int b = 0; b < nb; b++) {
        const float *xb = x->data + b * c_in * P;
        float *y = n->data + b * ys;
        if (cv_direct(&q)) {
            ag_sgemm(1, 0, (int)K, (int)P, c_in, 1.0f, w->data, (int)K, xb, (int)P, 1.0f, y,
                     (int)P);
        } else {
            ag_sgemm(1, 0, (int)K, (int)P, c_in, 1.0f, w->data, (int)K, xb, (int)P, 0.0f,
                     n->aux, (int)P);
            cv_col2im(&q, n->aux, y);
        }
    }
}

/* With col_n = im2col(dy_n): dx_n += W col_n, dW += x_n col_n^T, db += sums of dy. */
static void convt_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const ag_node *x = n->src[0], *w = n->src[1];
    cv_geom q = convt_geom(n);
    int nb = x->shape.d[0], c_in = w->shape.d[0];
    int64_t K = cv_rows(&q), P = cv_cols(&q), ys = (int64_t)q.c * q.h * q.w;
    for (int b = 0; b < nb && (need & 3u); b++) {
        const float *col = n->grad + b * ys;
        if (!cv_direct(&q)) {
            cv_im2col(&q, col, n->aux);
            col = n->aux;
        }
        if (need & 1u)
            ag_sgemm(0, 0, c_in, (int)P, (int)K, 1.0f, w->data, (int)K, col, (int)P, 1.0f,
                     x->grad + b * c_in * P, (int)P);
        if (need & 2u)
            ag_sgemm(0, 1, c_in, (int)K, (int)P, 1.0f, x->data + b * c_in * P, (int)P, col,
                     (int)P, 1.0f, w->grad, (int)K);
    }
    if (need & 4u)
        cv_bias_grad(n->src[2]->grad, n->grad, (int64_t)nb * q.c, q.c, (int64_t)q.h * q.w);
}

const ag_op_def ag_def_conv_transpose2d = {.name = "conv_transpose2d", .min_src = 2,
                                           .max_src = 3, .infer = convt_infer,
                                           .forward = convt_forward,
                                           .backward = convt_backward};
