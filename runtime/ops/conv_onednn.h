/*
 * conv_onednn.h — conv2d and conv_transpose2d by oneDNN's primitives (prefix cvd_), for
 * runtime/ops/conv.c when the backend is oneDNN. Private to runtime/ops.
 *
 * Both return 1 when they did the work, 0 when the caller's im2col path must: another
 * backend, a build without oneDNN, or a geometry oneDNN has no primitive for. They
 * take the images in slices, one per thread of the pool, each slice's primitives run on
 * that thread alone; the weight and bias gradients of the slices are added in slice
 * order, so the bits depend on the thread count alone.
 */
#ifndef AIGC_OPS_CONV_ONEDNN_H
#define AIGC_OPS_CONV_ONEDNN_H

/* x [n, cin, ih, iw] -> y [n, cout, oh, ow]; the weight in PyTorch's layout: conv2d
 * [cout, cin, kh, kw], conv_transpose2d [cin, cout, kh, kw]. */
typedef struct cvd_conv {
    int transposed, bias;
    int n, cin, ih, iw;
    int cout, oh, ow;
    int kh, kw, sh, sw, ph, pw, oph, opw;
} cvd_conv;

/* y = conv(x, w) + b (b NULL when !c->bias). */
int cvd_forward(const cvd_conv *c, const float *x, const float *w, const float *b, float *y);

/* dx += the input gradient (dx = it, with assign_dx), dw += the weight gradient, db +=
 * the bias gradient, each skipped when NULL. */
int cvd_backward(const cvd_conv *c, const float *x, const float *w, const float *dy, float *dx,
                 int assign_dx, float *dw, float *db);

#endif
