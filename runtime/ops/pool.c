/*
 * pool.c — avg_pool2d and upsample_nearest2d on NCHW tensors: the resampling steps of a
 * U-Net's down and up paths.
 *
 * Both work plane by plane: a plane is one [H, W] image of one channel, and [N, C, H, W]
 * is N C planes one after the other.
 *   avg_pool2d:         i[0] square kernel k, i[1] stride s; no padding, and as PyTorch
 *                       the last window that does not fit is dropped:
 *                       H_out = (H - k) / s + 1.
 *   upsample_nearest2d: i[0] integer scale s; y[oy][ox] = x[oy / s][ox / s].
 */
#include "aigc/graph.h"
#include "axis.h"
#include "build.h"

static int pl_check_input(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    if (x->shape.ndim != 4)
        return ag_errorf(err, n->loc, "%s: the input must be 4-D [N, C, H, W], got %s",
                         ax_op_name(n), AX_SHAPE(x));
    n->batched = x->batched;
    n->aux_numel = 0;
    return AG_OK;
}

static int64_t pl_planes(const ag_shape *s) { return (int64_t)s->d[0] * s->d[1]; }

/* -------------------------------------------------------------- avg_pool2d -- */

static int avg_infer(ag_node *n, ag_error *err)
{
    if (pl_check_input(n, err) != AG_OK) return AG_ERR;
    const ag_shape *x = &n->src[0]->shape;
    int k = n->i[0], s = n->i[1];
    if (k < 1 || s < 1)
        return ag_errorf(err, n->loc, "avg_pool2d: the %s must be at least 1, got %d",
                         k < 1 ? "kernel size" : "stride", k < 1 ? k : s);
    if (x->d[2] < k || x->d[3] < k)
        return ag_errorf(err, n->loc,
                         "avg_pool2d: the %dx%d kernel is larger than the %dx%d input", k, k,
                         x->d[2], x->d[3]);
    n->shape = ag_shape4(x->d[0], x->d[1], (x->d[2] - k) / s + 1, (x->d[3] - k) / s + 1);
    return AG_OK;
}

static void avg_forward(ag_graph *g, ag_node *n)
{
    const ag_shape *xs = &n->src[0]->shape;
    int k = n->i[0], s = n->i[1], h = xs->d[2], w = xs->d[3];
    int oh = n->shape.d[2], ow = n->shape.d[3];
    float scale = 1.0f / (float)(k * k);
    for (int64_t t = 0; t < pl_planes(xs); t++) {
        const float *x = n->src[0]->data + t * h * w;
        float *y = n->data + t * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *win = x + (int64_t)oy * s * w + ox * s;
                float sum = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) sum += win[i * w + j];
                y[oy * ow + ox] = sum * scale;
            }
    }
}

/* Each input in a window gets the window's dy / k^2; overlapping windows add up. */
static void avg_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    const ag_shape *xs = &n->src[0]->shape;
    int k = n->i[0], s = n->i[1], h = xs->d[2], w = xs->d[3];
    int oh = n->shape.d[2], ow = n->shape.d[3];
    float scale = 1.0f / (float)(k * k);
    for (int64_t t = 0; t < pl_planes(xs); t++) {
        float *dx = n->src[0]->grad + t * h * w;
        const float *dy = n->grad + t * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float *win = dx + (int64_t)oy * s * w + ox * s;
                float v = dy[oy * ow + ox] * scale;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) win[i * w + j] += v;
            }
    }
}

const ag_op_def ag_def_avg_pool2d = {.name = "avg_pool2d", .min_src = 1, .max_src = 1,
                                     .infer = avg_infer, .forward = avg_forward,
                                     .backward = avg_backward};

/* ------------------------------------------------------ upsample_nearest2d -- */

static int up_infer(ag_node *n, ag_error *err)
{
    if (pl_check_input(n, err) != AG_OK) return AG_ERR;
    const ag_shape *x = &n->src[0]->shape;
    if (n->i[0] < 1)
        return ag_errorf(err, n->loc,
                         "upsample_nearest2d: the scale factor must be at least 1, got %d",
                         n->i[0]);
    n->shape = ag_shape4(x->d[0], x->d[1], x->d[2] * n->i[0], x->d[3] * n->i[0]);
    return AG_OK;
}

static void up_forward(ag_graph *g, ag_node *n)
{
    const ag_shape *xs = &n->src[0]->shape;
    int s = n->i[0], h = xs->d[2], w = xs->d[3], ow = w * s;
    for (int64_t t = 0; t < pl_planes(xs); t++) {
        const float *x = n->src[0]->data + t * h * w;
        float *y = n->data + t * h * w * s * s;
        for (int iy = 0; iy < h; iy++) {
            float *row = y + (int64_t)iy * s * ow;
            for (int ix = 0; ix < w; ix++)
                for (int j = 0; j < s; j++) row[ix * s + j] = x[iy * w + ix];
            for (int i = 1; i < s; i++)
                for (int ox = 0; ox < ow; ox++) row[i * ow + ox] = row[ox];
        }
    }
}

/* dx is the sum of dy over each s x s block. */
static void up_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    const ag_shape *xs = &n->src[0]->shape;
    int s = n->i[0], h = xs->d[2], w = xs->d[3], ow = w * s;
    for (int64_t t = 0; t < pl_planes(xs); t++) {
        float *dx = n->src[0]->grad + t * h * w;
        const float *dy = n->grad + t * h * w * s * s;
        for (int oy = 0; oy < h * s; oy++)
            for (int ox = 0; ox < ow; ox++) dx[(oy / s) * w + ox / s] += dy[oy * ow + ox];
    }
}

const ag_op_def ag_def_upsample_nearest2d = {.name = "upsample_nearest2d", .min_src = 1,
                                             .max_src = 1, .infer = up_infer,
                                             .forward = up_forward, .backward = up_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_avg_pool2d(ag_graph *g, ag_node *x, int kernel, int stride)
{
    return bd_new1(g, AG_OP_AVG_POOL2D, x, NULL, BD_I(kernel, stride ? stride : kernel));
}

ag_node *ag_upsample_nearest2d(ag_graph *g, ag_node *x, int scale)
{
    return bd_new1(g, AG_OP_UPSAMPLE_NEAREST2D, x, NULL, BD_I(scale));
}
