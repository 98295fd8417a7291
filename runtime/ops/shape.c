/*
 * shape.c — ops that move values without computing: reshape, concat, slice, gather.
 *
 * The batch dim cannot be joined, cut or reshaped into another dim: its size changes
 * from batch to batch, and a shape that fits one batch would break at the next.
 */
#include <math.h>
#include <string.h>

#include <stdint.h>

#include "aigc/graph.h"
#include "aigc/pool.h"
#include "axis.h"
#include "build.h"

/* ---- reshape: i[0..i[4]-1] the new dims, one of them may be -1 -------------------- */

/* A batched input keeps its batch: the new shape must start with -1, and the other
 * dims must hold exactly one sample. */
static int reshape_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    ag_shape want = {n->i[4], {0}};
    AG_ASSERT(want.ndim >= 0 && want.ndim <= AG_MAX_DIMS);
    memcpy(want.d, n->i, (size_t)want.ndim * sizeof want.d[0]);
    char ws[64];
    ag_shape_str(&want, 0, ws, sizeof ws);

    int infer_at = -1;
    int64_t known = 1;
    for (int k = 0; k < want.ndim; k++) {
        if (want.d[k] == -1 && infer_at < 0) {
            infer_at = k;
        } else if (want.d[k] <= 0) {
            return ag_errorf(err, n->loc,
                             "reshape: bad new shape %s: dims must be positive, with at "
                             "most one -1",
                             ws);
        } else if (known > INT64_MAX / want.d[k]) {
            return ag_errorf(err, n->loc, "reshape: the new shape %s has too many values", ws);
        } else {
            known *= want.d[k];
        }
    }
    int64_t total = ag_numel(&x->shape);
    if (x->batched) {
        if (infer_at != 0)
            return ag_errorf(err, n->loc,
                             "reshape: the input %s is batched: the new shape must start "
                             "with -1 for the batch, not %s",
                             AX_SHAPE(x), ws);
        total = 1;  /* per sample, whatever the batch is now */
        for (int k = 1; k < x->shape.ndim; k++) total *= x->shape.d[k];
        if (known != total)
            return ag_errorf(err, n->loc,
                             "reshape: cannot reshape %s to %s: a sample has %lld values, "
                             "not %lld",
                             AX_SHAPE(x), ws, (long long)total, (long long)known);
        want.d[0] = x->shape.d[0];
    } else {
        if (infer_at >= 0 && total % known == 0) want.d[infer_at] = (int)(total / known);
        if (ag_numel(&want) != total)
            return ag_errorf(err, n->loc, "reshape: cannot reshape %s (%lld values) to %s",
                             AX_SHAPE(x), (long long)total, ws);
    }
    n->shape = want;
    n->batched = x->batched;
    n->aux_numel = 0;
    return AG_OK;
}

/* The planner points the output's data and grad at the input's: nothing to move. */
static void reshape_forward(ag_graph *g, ag_node *n) {}
static void reshape_backward(ag_graph *g, ag_node *n, unsigned need) {}

const ag_op_def ag_def_reshape = {.name = "reshape", .min_src = 1, .max_src = 1,
                                  .flags = AG_DEF_ALIAS_DATA | AG_DEF_ALIAS_GRAD,
                                  .infer = reshape_infer, .forward = reshape_forward,
                                  .backward = reshape_backward};

/* ---- concat: the sources joined along axis i[0] --------------------------------- */

static int concat_infer(ag_node *n, ag_error *err)
{
    const ag_node *x0 = n->src[0];
    int axis = ax_resolve(n, n->i[0], x0, err);
    if (axis < 0) return AG_ERR;
    if (axis == 0 && x0->batched)
        return ag_errorf(err, n->loc, "concat: cannot join %s along its batch axis 0",
                         AX_SHAPE(x0));
    n->shape = x0->shape;
    for (int s = 1; s < n->nsrc; s++) {
        const ag_node *x = n->src[s];
        int fits = x->shape.ndim == x0->shape.ndim && x->batched == x0->batched;
        for (int k = 0; fits && k < x0->shape.ndim; k++)
            fits = k == axis || x->shape.d[k] == x0->shape.d[k];
        if (!fits)
            return ag_errorf(err, n->loc,
                             "concat: shapes %s and %s differ outside the axis %d",
                             AX_SHAPE(x0), AX_SHAPE(x), axis);
        n->shape.d[axis] += x->shape.d[axis];
    }
    n->batched = x0->batched;
    n->aux_numel = 0;
    return AG_OK;
}

/* In the [outer, len, inner] view every source's rows lie side by side in the output's
 * rows: row o of the output is row o of src 0, then row o of src 1, and so on. The rows
 * o are cut over the pool: a U-Net's skip connections join whole feature maps. */
typedef struct concat_job {
    const ag_node *n;
    int64_t inner, out_row, rows;
    int axis;
    unsigned need, assign; /* backward's */
} concat_job;

static concat_job concat_job_of(const ag_graph *g, const ag_node *n, unsigned need)
{
    int axis = ax_norm(n->i[0], n->shape.ndim);
    ax_view v = ax_view_of(&n->shape, axis);
    return (concat_job){n, v.inner, (int64_t)n->shape.d[axis] * v.inner, v.outer, axis, need, g->bw_assign};
}

/* The items of a concat: its rows o, and enough of them a chunk to be worth a thread. */
static int64_t concat_grain(const concat_job *j)
{
    return tp_items_holding(1 << 14, j->out_row);
}

static void concat_fw_rows(void *ctx, int64_t lo, int64_t hi)
{
    const concat_job *j = ctx;
    const ag_node *n = j->n;
    for (int64_t o = lo; o < hi; o++) {
        float *y = n->data + o * j->out_row;
        for (int s = 0; s < n->nsrc; s++) {
            int64_t row = (int64_t)n->src[s]->shape.d[j->axis] * j->inner;
            memcpy(y, n->src[s]->data + o * row, (size_t)row * sizeof *y);
            y += row;
        }
    }
}

static void concat_forward(ag_graph *g, ag_node *n)
{
    concat_job j = concat_job_of(g, n, 0);
    tp_for_items(j.rows, concat_grain(&j), concat_fw_rows, &j);
}

static void concat_bw_rows(void *ctx, int64_t lo, int64_t hi)
{
    const concat_job *j = ctx;
    const ag_node *n = j->n;
    for (int64_t o = lo; o < hi; o++) {
        const float *gy = n->grad + o * j->out_row;
        for (int s = 0; s < n->nsrc; s++) {
            int64_t row = (int64_t)n->src[s]->shape.d[j->axis] * j->inner;
            if (j->assign >> s & 1u) {
                memcpy(n->src[s]->grad + o * row, gy, (size_t)row * sizeof *gy);
            } else if (j->need >> s & 1u) {
                float *gx = n->src[s]->grad + o * row;
                for (int64_t k = 0; k < row; k++) gx[k] += gy[k];
            }
            gy += row;
        }
    }
}

static void concat_backward(ag_graph *g, ag_node *n, unsigned need)
{
    concat_job j = concat_job_of(g, n, need);
    tp_for_items(j.rows, concat_grain(&j), concat_bw_rows, &j);
}

const ag_op_def ag_def_concat = {.name = "concat", .min_src = 2, .max_src = AG_MAX_SRC,
                                 .flags = AG_DEF_BW_ASSIGN, .infer = concat_infer,
                                 .forward = concat_forward, .backward = concat_backward};

/* ---- slice: [i[1], i[2]) along axis i[0]; negative bounds count from the end ------ */

static void slice_bounds(const ag_node *n, int len, int *start, int *end)
{
    *start = n->i[1] < 0 ? n->i[1] + len : n->i[1];
    *end = n->i[2] < 0 ? n->i[2] + len : n->i[2];
}

static int slice_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    int start, end, axis = ax_resolve(n, n->i[0], x, err);
    if (axis < 0) return AG_ERR;
    if (axis == 0 && x->batched)
        return ag_errorf(err, n->loc, "slice: cannot slice %s along its batch axis 0",
                         AX_SHAPE(x));
    slice_bounds(n, x->shape.d[axis], &start, &end);
    if (start < 0 || end > x->shape.d[axis] || start >= end)
        return ag_errorf(err, n->loc,
                         "slice: [%d, %d) is not a non-empty range of axis %d of %s",
                         n->i[1], n->i[2], axis, AX_SHAPE(x));
    n->shape = x->shape;
    n->shape.d[axis] = end - start;
    n->batched = x->batched;
    n->aux_numel = 0;
    return AG_OK;
}

/* In the [outer, len, inner] view of the input, output row o is a contiguous piece of
 * input row o. */
typedef struct slice_geom {
    ax_view in;
    int64_t skip, row;  /* floats before the piece, floats in it */
} slice_geom;

static slice_geom slice_geom_of(const ag_node *n)
{
    const ag_shape *s = &n->src[0]->shape;
    int axis = ax_norm(n->i[0], s->ndim), start, end;
    slice_bounds(n, s->d[axis], &start, &end);
    ax_view v = ax_view_of(s, axis);
    return (slice_geom){v, start * v.inner, (int64_t)(end - start) * v.inner};
}

static void slice_forward(ag_graph *g, ag_node *n)
{
    slice_geom sg = slice_geom_of(n);
    for (int64_t o = 0; o < sg.in.outer; o++) {
        const float *x = n->src[0]->data + o * sg.in.len * sg.in.inner + sg.skip;
        memcpy(n->data + o * sg.row, x, (size_t)sg.row * sizeof(float));
    }
}

static void slice_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    slice_geom sg = slice_geom_of(n);
    for (int64_t o = 0; o < sg.in.outer; o++) {
        float *gx = n->src[0]->grad + o * sg.in.len * sg.in.inner + sg.skip;
        const float *gy = n->grad + o * sg.row;
        for (int64_t j = 0; j < sg.row; j++) gx[j] += gy[j];
    }
}

const ag_op_def ag_def_slice = {.name = "slice", .min_src = 1, .max_src = 1,
                                .infer = slice_infer, .forward = slice_forward,
                                .backward = slice_backward};

/* ---- row_part: part i[0] of i[1] along dim 0 ------------------------------------ */

/* The batch cut in equal parts, WGAN's fresh real rows for each critic update: part k
 * of n holds rows [k B / n, (k + 1) B / n) of the B rows the input has now. It is not
 * batched (a node that is follows the whole batch); its rows follow the batch all the
 * same, since each batch infers the shapes again. A batch of rows that n does not
 * divide is the spec's to prevent (split's check, data.drop_last); the graph is built
 * at a batch of 1, where a part holds that row, to be inferred again when planned. */
static int row_part_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    if (x->shape.ndim < 1 || n->i[1] < 1 || n->i[0] < 0 || n->i[0] >= n->i[1])
        return ag_errorf(err, n->loc, "row_part: part %d of %d of %s", n->i[0], n->i[1], AX_SHAPE(x));
    int building = x->batched && x->shape.d[0] == 1;
    if (x->shape.d[0] % n->i[1] && !building)
        return ag_errorf(err, n->loc, "split: %d rows do not split into %d equal parts", x->shape.d[0], n->i[1]);
    n->shape = x->shape;
    n->shape.d[0] = building ? 1 : x->shape.d[0] / n->i[1];
    n->batched = 0;
    n->aux_numel = 0;
    return AG_OK;
}

static void row_part_forward(ag_graph *g, ag_node *n)
{
    int64_t len = ag_numel(&n->shape);
    AG_ASSERT((n->i[0] + 1) * len <= ag_numel(&n->src[0]->shape));
    memcpy(n->data, n->src[0]->data + n->i[0] * len, (size_t)len * sizeof(float));
}

static void row_part_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    int64_t len = ag_numel(&n->shape);
    float *gx = n->src[0]->grad + n->i[0] * len;
    for (int64_t j = 0; j < len; j++) gx[j] += n->grad[j];
}

const ag_op_def ag_def_row_part = {.name = "row_part", .min_src = 1, .max_src = 1,
                                   .infer = row_part_infer, .forward = row_part_forward,
                                   .backward = row_part_backward};

/* ---- gather: torch.gather(src 0, axis i[0], index = src 1) ---------------------- */

/* out[..., k, ...] = x[..., index[..., k, ...], ...] with the index at the axis; out has
 * the index's shape, which may be smaller than x's in every other dim. */
static int gather_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0], *idx = n->src[1];
    int axis = ax_resolve(n, n->i[0], x, err);
    if (axis < 0) return AG_ERR;
    int fits = idx->shape.ndim == x->shape.ndim;
    for (int k = 0; fits && k < x->shape.ndim; k++) {
        if (k == axis) continue;
        if (k == 0 && (x->batched || idx->batched))
            fits = x->batched && idx->batched;
        else
            fits = idx->shape.d[k] <= x->shape.d[k];
    }
    if (!fits)
        return ag_errorf(err, n->loc,
                         "gather: index %s does not fit input %s outside the axis %d",
                         AX_SHAPE(idx), AX_SHAPE(x), axis);
    n->shape = idx->shape;
    n->batched = idx->batched;
    n->aux_numel = 0;
    return AG_OK;
}

/* Where in x output element k comes from, or -1 when its index is not a whole number
 * in [0, size of the axis). */
static int64_t gather_source(const ag_node *n, int axis, int64_t k)
{
    const ag_shape *xs = &n->src[0]->shape, *os = &n->shape;
    float v = n->src[1]->data[k];
    if (!(v >= 0 && v < (float)xs->d[axis]) || v != floorf(v)) return -1;
    int64_t at = 0, stride = 1;
    for (int d = os->ndim - 1; d >= 0; d--) {
        int64_t c = d == axis ? (int64_t)v : k % os->d[d];
        k /= os->d[d];
        at += c * stride;
        stride *= xs->d[d];
    }
    return at;
}

static void gather_forward(ag_graph *g, ag_node *n)
{
    int axis = ax_norm(n->i[0], n->shape.ndim);
    int64_t len = ag_numel(&n->shape);
    for (int64_t k = 0; k < len; k++) {
        int64_t at = gather_source(n, axis, k);
        if (at < 0) {
            ag_fail(g, n, "gather: index %g is out of range [0, %d) along axis %d",
                    n->src[1]->data[k], n->src[0]->shape.d[axis], axis);
            return;
        }
        n->data[k] = n->src[0]->data[at];
    }
}

/* The index takes no gradient: bit 1 of need is never acted on. */
static void gather_backward(ag_graph *g, ag_node *n, unsigned need)
{
    if (!(need & 1u)) return;
    int axis = ax_norm(n->i[0], n->shape.ndim);
    int64_t len = ag_numel(&n->shape);
    for (int64_t k = 0; k < len; k++) {
        int64_t at = gather_source(n, axis, k);
        AG_ASSERT(at >= 0);  /* forward has checked every index */
        n->src[0]->grad[at] += n->grad[k];
    }
}

const ag_op_def ag_def_gather = {.name = "gather", .min_src = 2, .max_src = 2,
                                 .infer = gather_infer, .forward = gather_forward,
                                 .backward = gather_backward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_reshape(ag_graph *g, ag_node *x, int ndim, const int *dims)
{
    AG_ASSERT(ndim >= 0 && ndim <= AG_MAX_DIMS);
    int ip[AG_MAX_IP] = {0};
    for (int k = 0; k < ndim; k++) ip[k] = dims[k];
    ip[4] = ndim;
    return bd_new1(g, AG_OP_RESHAPE, x, NULL, ip);
}

ag_node *ag_flatten(ag_graph *g, ag_node *x)
{
    if (!x) return NULL;
    return ag_reshape(g, x, 2, (const int[]){-1, x->shape.ndim ? (int)(ag_numel(&x->shape) / x->shape.d[0]) : 1});
}

ag_node *ag_concat(ag_graph *g, int n, ag_node *const *xs, int axis)
{
    return ag_new(g, AG_OP_CONCAT, n, xs, NULL, BD_I(axis));
}

ag_node *ag_slice(ag_graph *g, ag_node *x, int axis, int start, int end)
{
    return bd_new1(g, AG_OP_SLICE, x, NULL, BD_I(axis, start, end));
}

ag_node *ag_row_part(ag_graph *g, ag_node *x, int part, int parts)
{
    return bd_new1(g, AG_OP_ROW_PART, x, NULL, BD_I(part, parts));
}

ag_node *ag_gather(ag_graph *g, ag_node *x, int axis, ag_node *index)
{
    return bd_new2(g, AG_OP_GATHER, x, index, NULL, BD_I(axis));
}
