/*
 * axis.h — what the ops with an axis argument share (prefix ax_): resolving a negative
 * axis, viewing a shape as [outer, len, inner] around an axis, and naming a node's
 * shape in a message. Private to runtime/ops.
 */
#ifndef AIGC_OPS_AXIS_H
#define AIGC_OPS_AXIS_H

#include "aigc/graph.h"

/* A node's shape as text, batch dim as B, in a buffer that lives for the statement. */
#define AX_SHAPE(node) ag_shape_str(&(node)->shape, (node)->batched, (char[64]){0}, 64)

static inline const char *ax_op_name(const ag_node *n) { return ag_op_defs[n->op]->name; }

/* axis counted from the end when negative; the caller's infer has checked the range. */
static inline int ax_norm(int axis, int ndim) { return axis < 0 ? axis + ndim : axis; }

/* For infer: the axis of node n over source x, or -1 with an error located at n. */
static inline int ax_resolve(const ag_node *n, int axis, const ag_node *x, ag_error *err)
{
    int a = ax_norm(axis, x->shape.ndim);
    if (a >= 0 && a < x->shape.ndim) return a;
    ag_errorf(err, n->loc, "%s: axis %d is out of range for the %d-D input %s",
              ax_op_name(n), axis, x->shape.ndim, AX_SHAPE(x));
    return -1;
}

/* A contiguous tensor seen as [outer, len, inner] with len the size of axis: element
 * (o, k, j) is at (o * len + k) * inner + j. */
typedef struct ax_view {
    int64_t outer, inner;
    int len;
} ax_view;

static inline ax_view ax_view_of(const ag_shape *s, int axis)
{
    ax_view v = {1, 1, s->d[axis]};
    for (int k = 0; k < axis; k++) v.outer *= s->d[k];
    for (int k = axis + 1; k < s->ndim; k++) v.inner *= s->d[k];
    return v;
}

#endif
