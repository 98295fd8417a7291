/* builtins.c — the functions of the step language: noise, losses, shape and math.
 *
 * Each builtin names its parameters in order; a call's positional arguments fill them
 * from the left and keyword arguments by name, and the builder sees one value per
 * parameter (PV_NONE where the call left it out). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aigc/dist.h"
#include "aigc/suggest.h"
#include "eval.h"

enum { BI_MAX_PARAMS = AB_MAX_PARAMS };

struct bi_def {
    const char *name;
    int nrequired;
    const char *params[BI_MAX_PARAMS];
    /* variadic: every positional argument goes to params[0..], as many as given */
    int variadic;
    int (*build)(ev_ctx *c, const ex_node *call, pv *a, int na, pv *outs, int *nout,
                 ag_error *err);
};

/* ----------------------------------------------------------- arguments -- */

static int want_tensor(const ex_node *call, const pv *v, const char *what, ag_error *err)
{
    if (v->kind == PV_TENSOR) return AG_OK;
    return ag_errorf(err, v->kind ? v->loc : call->loc, "%s: '%s' must be a tensor", call->text, what);
}

static int want_int(const ex_node *call, const pv *v, const char *what, int lo, int hi, int *out,
                    ag_error *err)
{
    if (v->kind != PV_NUM || v->num != floor(v->num) || v->num < lo || v->num > hi)
        return ag_errorf(err, v->kind ? v->loc : call->loc, "%s: '%s' must be a whole number in [%d, %d]",
                         call->text, what, lo, hi);
    *out = (int)v->num;
    return AG_OK;
}

static int opt_int(const ex_node *call, const pv *v, const char *what, int lo, int hi, int dflt,
                   int *out, ag_error *err)
{
    if (v->kind == PV_NONE) {
        *out = dflt;
        return AG_OK;
    }
    return want_int(call, v, what, lo, hi, out, err);
}

static int built(ev_ctx *c, ag_node *n, float lo, float hi, const ex_node *call, pv *outs,
                 int *nout, ag_error *err)
{
    if (!n) {
        *err = c->g->err;
        return AG_ERR;
    }
    outs[0] = ev_tensor(n, lo, hi, call->loc);
    *nout = 1;
    return AG_OK;
}

/* -------------------------------------------------------------- shapes -- */

/* randn(batch, 100): sizes are numbers, and `batch` first makes dim 0 follow the batch. */
static int dims_of(const ex_node *call, const pv *a, int na, ag_shape *s, int *batched,
                   ag_error *err)
{
    if (na < 1 || na > AG_MAX_DIMS)
        return ag_errorf(err, call->loc, "%s: give 1 to %d sizes", call->text, AG_MAX_DIMS);
    *batched = 0;
    s->ndim = na;
    for (int k = 0; k < na; k++) {
        if (k == 0 && a[k].kind == PV_BATCH) {
            *batched = 1;
            s->d[0] = 1;
            continue;
        }
        if (want_int(call, &a[k], "size", 1, 1 << 24, &s->d[k], err)) return AG_ERR;
    }
    return AG_OK;
}

static int b_randn(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    ag_shape s;
    int batched = 0;
    if (dims_of(call, a, na, &s, &batched, err)) return AG_ERR;
    return built(c, ag_randn(c->g, s, batched, 0, 1), -INFINITY, INFINITY, call, o, no, err);
}

static int b_rand(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    ag_shape s;
    int batched = 0;
    if (dims_of(call, a, na, &s, &batched, err)) return AG_ERR;
    return built(c, ag_rand(c->g, s, batched, 0, 1), 0, 1, call, o, no, err);
}

/* randint(T, batch): integers uniform in [0, T), one per sample. */
static int b_randint(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    int high = 0;
    if (want_int(call, &a[0], "high", 1, 1 << 24, &high, err)) return AG_ERR;
    ag_shape s;
    int batched = 0;
    if (dims_of(call, a + 1, na - 1, &s, &batched, err)) return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_randint(c->g, s, batched, high), 0, (float)(high - 1), call, o, no, err);
}

/* at(table, t, like=x, outside=1): table[t] per sample, shaped to broadcast against x;
 * `outside` where t leaves the table (alpha_bar before step 0 is 1). */
static int b_at(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    if (want_tensor(call, &a[0], "table", err) || want_tensor(call, &a[1], "index", err)) return AG_ERR;
    int rank = 0;
    if (a[2].kind != PV_NONE) {
        if (want_tensor(call, &a[2], "like", err)) return AG_ERR;
        rank = a[2].node->shape.ndim;
    }
    float outside = 1.0f;
    if (a[3].kind == PV_NUM)
        outside = (float)a[3].num;
    else if (a[3].kind != PV_NONE)
        return ag_errorf(err, a[3].loc, "at: 'outside' must be a number");
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_table_at(c->g, a[0].node, a[1].node, outside, rank), fminf(a[0].lo, outside),
                 fmaxf(a[0].hi, outside), call, o, no, err);
}

static int b_zeros(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    ag_shape s;
    int batched = 0;
    float v = strcmp(call->text, "ones") == 0 ? 1.0f : 0.0f;
    if (dims_of(call, a, na, &s, &batched, err)) return AG_ERR;
    return built(c, ag_full(c->g, s, batched, v), v, v, call, o, no, err);
}

static int b_like(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    if (want_tensor(call, &a[0], "input", err)) return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    const char *f = call->text;
    if (strcmp(f, "randn_like") == 0)
        return built(c, ag_randn_like(c->g, a[0].node), -INFINITY, INFINITY, call, o, no, err);
    if (strcmp(f, "rand_like") == 0) return built(c, ag_rand_like(c->g, a[0].node), 0, 1, call, o, no, err);
    float v = strcmp(f, "ones_like") == 0 ? 1.0f : 0.0f;
    return built(c, ag_full_like(c->g, a[0].node, v), v, v, call, o, no, err);
}

static int b_detach(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    if (want_tensor(call, &a[0], "input", err)) return AG_ERR;
    return built(c, ag_detach(c->g, a[0].node), a[0].lo, a[0].hi, call, o, no, err);
}

/* split(x, n, axis=0) of a batched x: n parts of the batch's rows, for a fresh real batch
 * per critic update. Every batch must then split alike: training leaves the short last
 * batch out (data.drop_last), and the data-parallel ranks, which hold shares of the
 * rows, cannot cut the whole batch. */
static int split_batch(ev_ctx *c, const ex_node *call, pv *a, int n, pv *o, int *no, ag_error *err)
{
    const sp_data *d = &c->p->spec->data;
    if (dp_size() > 1)
        return ag_errorf(err, call->loc, "%s: cutting the batch (axis 0) is not supported in data-parallel training: "
                         "each rank holds a share of the batch's rows", call->text);
    if (!d->drop_last)
        return ag_errorf(err, call->loc, "%s: cutting the batch (axis 0) into %d parts needs every batch full, but an "
                         "epoch's last batch may have fewer than %d rows: add 'drop_last: true' under data",
                         call->text, n, d->batch);
    if (d->batch % n)
        return ag_errorf(err, call->loc, "%s: the batch of %d (data.batch at %d:%d) does not cut into %d equal parts",
                         call->text, d->batch, d->batch_loc.line, d->batch_loc.col, n);
    ag_graph_set_loc(c->g, call->loc);
    for (int k = 0; k < n; k++) {
        ag_node *s = ag_row_part(c->g, a[0].node, k, n);
        if (!s) {
            *err = c->g->err;
            return AG_ERR;
        }
        o[k] = ev_tensor(s, a[0].lo, a[0].hi, call->loc);
    }
    *no = n;
    return AG_OK;
}

/* split(x, n): n equal parts along the last axis (or axis=); chunk is the same. */
static int b_split(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    int n = 0, axis = 0;
    if (want_tensor(call, &a[0], "input", err) || want_int(call, &a[1], "parts", 1, EV_MAX_OUT, &n, err) ||
        opt_int(call, &a[2], "axis", -AG_MAX_DIMS, AG_MAX_DIMS - 1, -1, &axis, err))
        return AG_ERR;
    ag_node *x = a[0].node;
    int ax = axis < 0 ? axis + x->shape.ndim : axis;
    if (ax < 0 || ax >= x->shape.ndim)
        return ag_errorf(err, call->loc, "%s: axis %d is out of range for a %d-D input", call->text, axis,
                         x->shape.ndim);
    if (ax == 0 && x->batched) return split_batch(c, call, a, n, o, no, err);
    int len = x->shape.d[ax];
    if (len % n)
        return ag_errorf(err, call->loc, "%s: %d elements along axis %d do not split into %d equal parts",
                         call->text, len, axis, n);
    ag_graph_set_loc(c->g, call->loc);
    for (int k = 0; k < n; k++) {
        ag_node *s = ag_slice(c->g, x, ax, k * (len / n), (k + 1) * (len / n));
        if (!s) {
            *err = c->g->err;
            return AG_ERR;
        }
        o[k] = ev_tensor(s, a[0].lo, a[0].hi, call->loc);
    }
    *no = n;
    return AG_OK;
}

static int b_concat(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    /* positional tensors, then axis= */
    int n = 0, axis = -1;
    ag_node *xs[AG_MAX_SRC];
    float lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < na; k++) {
        if (a[k].kind == PV_NONE) continue;
        if (k == BI_MAX_PARAMS - 1) {
            if (want_int(call, &a[k], "axis", -AG_MAX_DIMS, AG_MAX_DIMS - 1, &axis, err)) return AG_ERR;
            continue;
        }
        if (want_tensor(call, &a[k], "input", err)) return AG_ERR;
        if (n == AG_MAX_SRC)
            return ag_errorf(err, call->loc, "concat: at most %d tensors at once", AG_MAX_SRC);
        xs[n++] = a[k].node;
        lo = fminf(lo, a[k].lo);
        hi = fmaxf(hi, a[k].hi);
    }
    if (n < 2) return ag_errorf(err, call->loc, "concat: give at least two tensors");
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_concat(c->g, n, xs, axis), lo, hi, call, o, no, err);
}

/* cycle(n, k): 0, 1, ..., k-1, 0, 1, ...: labels for a grid of conditional samples. */
static int b_cycle(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    int n = 0, k = 0;
    if (want_int(call, &a[0], "count", 1, 1 << 24, &n, err) ||
        want_int(call, &a[1], "period", 1, 1 << 24, &k, err))
        return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_cycle(c->g, n, k), 0, (float)(k - 1), call, o, no, err);
}

static int b_interpolate(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    int steps = 0;
    if (want_tensor(call, &a[0], "a", err) || want_tensor(call, &a[1], "b", err) ||
        want_int(call, &a[2], "steps", 2, 1024, &steps, err))
        return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_interpolate(c->g, a[0].node, a[1].node, steps), fminf(a[0].lo, a[1].lo),
                 fmaxf(a[0].hi, a[1].hi), call, o, no, err);
}

/* threshold(x, t): 1 where x > t (binarized data); bernoulli(p): a draw per element. */
static int b_bits(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    if (want_tensor(call, &a[0], "input", err)) return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    if (!strcmp(call->text, "bernoulli")) {
        if (!(a[0].lo >= 0 && a[0].hi <= 1) && isfinite(a[0].lo) && isfinite(a[0].hi))
            return ag_errorf(err, a[0].loc, "bernoulli: the probabilities take values in [%g, %g], not in [0, 1]",
                             a[0].lo, a[0].hi);
        return built(c, ag_bernoulli(c->g, a[0].node), 0, 1, call, o, no, err);
    }
    if (a[1].kind != PV_NUM) return ag_errorf(err, a[1].kind ? a[1].loc : call->loc, "threshold: the level must be a number");
    return built(c, ag_threshold(c->g, a[0].node, (float)a[1].num), 0, 1, call, o, no, err);
}

static int b_flatten(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    if (want_tensor(call, &a[0], "input", err)) return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_flatten(c->g, a[0].node), a[0].lo, a[0].hi, call, o, no, err);
}

static int b_one_hot(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    int classes = 0;
    if (want_tensor(call, &a[0], "labels", err) ||
        want_int(call, &a[1], "classes", 1, 1 << 24, &classes, err))
        return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_one_hot(c->g, a[0].node, classes), 0, 1, call, o, no, err);
}

/* slice(x, start, end, axis=-1): x[..., start:end] along one axis; a negative start or
 * end counts from the axis's end, as in Python. */
static int b_slice(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    int axis = 0, start = 0, end = 0;
    if (want_tensor(call, &a[0], "input", err) ||
        opt_int(call, &a[3], "axis", -AG_MAX_DIMS, AG_MAX_DIMS - 1, -1, &axis, err))
        return AG_ERR;
    ag_node *x = a[0].node;
    int ax = axis < 0 ? axis + x->shape.ndim : axis;
    if (ax < 0 || ax >= x->shape.ndim)
        return ag_errorf(err, call->loc, "slice: axis %d is out of range for a %d-D input", axis, x->shape.ndim);
    int len = x->shape.d[ax];
    if (want_int(call, &a[1], "start", -len, len, &start, err) ||
        opt_int(call, &a[2], "end", -len, len, len, &end, err))
        return AG_ERR;
    if (start < 0) start += len;
    if (end < 0) end += len;
    if (start >= end)
        return ag_errorf(err, call->loc, "slice: [%d, %d) along axis %d is empty", start, end, axis);
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_slice(c->g, x, ax, start, end), a[0].lo, a[0].hi, call, o, no, err);
}

/* categorical(logits, top_k=K): a class index per row of logits [..., V], drawn from
 * their softmax (among the K largest; 0: all). Temperature is a division: logits / 0.8. */
static int b_categorical(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    int k = 0;
    if (want_tensor(call, &a[0], "logits", err) || opt_int(call, &a[1], "top_k", 0, 1 << 24, 0, &k, err))
        return AG_ERR;
    ag_node *x = a[0].node;
    ag_graph_set_loc(c->g, call->loc);
    float hi = x->shape.ndim ? (float)(x->shape.d[x->shape.ndim - 1] - 1) : 0;
    return built(c, ag_categorical(c->g, x, k), 0, hi, call, o, no, err);
}

/* ---------------------------------------------------------------- math -- */

typedef struct bi_unary {
    const char *name;
    ag_op op;
    double (*f)(double); /* increasing: maps the range; NULL: see below */
} bi_unary;

static const bi_unary unaries[] = {
    {"exp", AG_OP_EXP, exp},     {"log", AG_OP_LOG, log},   {"sqrt", AG_OP_SQRT, sqrt},
    {"abs", AG_OP_ABS, NULL},
};

static int b_unary(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    if (want_tensor(call, &a[0], "input", err)) return AG_ERR;
    const bi_unary *u = NULL;
    for (size_t k = 0; k < AG_COUNTOF(unaries); k++)
        if (strcmp(unaries[k].name, call->text) == 0) u = &unaries[k];
    AG_ASSERT(u);
    float lo = -INFINITY, hi = INFINITY;
    if (u->f) {
        lo = (float)u->f(a[0].lo);
        hi = (float)u->f(a[0].hi);
        if (isnan(lo)) lo = -INFINITY;
        if (isnan(hi)) hi = INFINITY;
    } else {
        lo = a[0].lo > 0 ? a[0].lo : a[0].hi < 0 ? -a[0].hi : 0;
        hi = (float)fmax(fabs(a[0].lo), fabs(a[0].hi));
    }
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_unary(c->g, u->op, a[0].node), lo, hi, call, o, no, err);
}

static int b_clamp(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    if (want_tensor(call, &a[0], "input", err)) return AG_ERR;
    float lo = -INFINITY, hi = INFINITY;
    for (int k = 1; k <= 2; k++) {
        if (a[k].kind == PV_NONE) continue;
        if (a[k].kind != PV_NUM) return ag_errorf(err, a[k].loc, "clamp: bounds must be numbers");
        *(k == 1 ? &lo : &hi) = (float)a[k].num;
    }
    if (!(lo <= hi)) return ag_errorf(err, call->loc, "clamp: min %g is above max %g", lo, hi);
    ag_graph_set_loc(c->g, call->loc);
    return built(c, ag_clamp(c->g, a[0].node, lo, hi), fmaxf(lo, a[0].lo), fminf(hi, a[0].hi), call, o,
                 no, err);
}

/* sum(x) and mean(x) reduce everything; axis= reduces one axis. */
static int b_reduce(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    if (want_tensor(call, &a[0], "input", err)) return AG_ERR;
    int mean = strcmp(call->text, "mean") == 0, keep = 0;
    if (opt_int(call, &a[2], "keepdim", 0, 1, 0, &keep, err)) return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    ag_node *y;
    if (a[1].kind == PV_NONE) {
        y = mean ? ag_mean(c->g, a[0].node) : ag_sum(c->g, a[0].node);
    } else {
        int axis = 0;
        if (want_int(call, &a[1], "axis", -AG_MAX_DIMS, AG_MAX_DIMS - 1, &axis, err)) return AG_ERR;
        y = mean ? ag_mean_axis(c->g, a[0].node, axis, keep) : ag_sum_axis(c->g, a[0].node, axis, keep);
    }
    float lo = mean ? a[0].lo : -INFINITY, hi = mean ? a[0].hi : INFINITY;
    return built(c, y, lo, hi, call, o, no, err);
}

static int b_softmax(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    int axis = 0, log_ = strcmp(call->text, "log_softmax") == 0;
    if (want_tensor(call, &a[0], "input", err) ||
        opt_int(call, &a[1], "axis", -AG_MAX_DIMS, AG_MAX_DIMS - 1, -1, &axis, err))
        return AG_ERR;
    ag_graph_set_loc(c->g, call->loc);
    if (log_) return built(c, ag_log_softmax(c->g, a[0].node, axis), -INFINITY, 0, call, o, no, err);
    return built(c, ag_softmax(c->g, a[0].node, axis), 0, 1, call, o, no, err);
}

/* -------------------------------------------------------------- losses -- */

typedef struct bi_loss {
    const char *name;
    ag_op op;
    ag_reduction dflt;
    int target_is_prob; /* bce: the target must lie in [0, 1] */
    int input_is_prob;  /* bce, not bce_with_logits: the input too */
    int target_is_sign; /* hinge, wasserstein: a number target is 1 (real) or -1 (fake) */
} bi_loss;

static const bi_loss losses[] = {
    {"bce", AG_OP_BCE, AG_RED_MEAN, 1, 1, 0},
    {"bce_with_logits", AG_OP_BCE_LOGITS, AG_RED_MEAN, 1, 0, 0},
    {"mse", AG_OP_MSE, AG_RED_MEAN, 0, 0, 0},
    {"l1", AG_OP_L1, AG_RED_MEAN, 0, 0, 0},
    {"cross_entropy", AG_OP_CROSS_ENTROPY, AG_RED_MEAN, 0, 0, 0},
    {"kl_normal", AG_OP_KL_NORMAL, AG_RED_SUM, 0, 0, 0},
    {"hinge", AG_OP_HINGE, AG_RED_MEAN, 0, 0, 1},
    {"wasserstein", AG_OP_WASSERSTEIN, AG_RED_MEAN, 0, 0, 1},
};

static const char *const reductions[] = {"mean", "sum", "none", NULL};

static int b_loss(ev_ctx *c, const ex_node *call, pv *a, int na, pv *o, int *no, ag_error *err)
{
    const bi_loss *L = NULL;
    for (size_t k = 0; k < AG_COUNTOF(losses); k++)
        if (strcmp(losses[k].name, call->text) == 0) L = &losses[k];
    AG_ASSERT(L);
    if (want_tensor(call, &a[0], "input", err)) return AG_ERR;
    /* A model ending in tanh (or any range the input is known to leave [0, 1] for) would
     * fail at the first batch; it is the spec's mistake, said before training. */
    if (L->input_is_prob && (a[0].lo < 0 || a[0].hi > 1) && isfinite(a[0].lo) && isfinite(a[0].hi))
        return ag_errorf(err, call->nargs ? call->args[0].value->loc : call->loc,
                         "%s: the input takes values in [%g, %g], but bce takes probabilities in [0, 1] "
                         "(end the model with sigmoid, or use bce_with_logits)",
                         L->name, a[0].lo, a[0].hi);
    ag_reduction red = L->dflt;
    if (a[2].kind != PV_NONE) {
        int found = -1;
        if (a[2].kind == PV_WORD)
            for (int k = 0; reductions[k]; k++)
                if (strcmp(reductions[k], a[2].word) == 0) found = k;
        if (found < 0) {
            char hint[96] = "";
            if (a[2].kind == PV_WORD) {
                sg_best b;
                sg_init(&b, a[2].word);
                for (int k = 0; reductions[k]; k++) sg_offer(&b, reductions[k]);
                sg_hint(&b, hint, sizeof hint);
            }
            return ag_errorf(err, a[2].loc, "%s: the reduction must be mean, sum or none%s", L->name, hint);
        }
        red = (ag_reduction)found;
    }
    ag_node *target;
    if (a[1].kind == PV_NUM) {
        /* bce(D(x), 1): a constant target shaped like the input. */
        if (L->target_is_prob && !(a[1].num >= 0 && a[1].num <= 1))
            return ag_errorf(err, a[1].loc, "%s: the target %g is outside [0, 1]", L->name, a[1].num);
        /* hinge(D(fake), 0) is bce's habit, and would be a loss that does not move. */
        if (L->target_is_sign && a[1].num != 1 && a[1].num != -1)
            return ag_errorf(err, a[1].loc, "%s: the target is 1 (real) or -1 (fake), not %g", L->name,
                             a[1].num);
        ag_graph_set_loc(c->g, call->loc);
        target = ag_full_like(c->g, a[0].node, (float)a[1].num);
        if (!target) {
            *err = c->g->err;
            return AG_ERR;
        }
    } else {
        if (want_tensor(call, &a[1], "target", err)) return AG_ERR;
        /* The seed VAE's bug: data scaled to [-1, 1] used as a bce target. */
        if (L->target_is_prob && (a[1].lo < 0 || a[1].hi > 1) && isfinite(a[1].lo) && isfinite(a[1].hi))
            return ag_errorf(err, a[1].loc,
                             "%s: the target takes values in [%g, %g], but bce targets must lie in [0, 1] "
                             "(scale the data with pixels / 255, not to [-1, 1])",
                             L->name, a[1].lo, a[1].hi);
        target = a[1].node;
    }
    ag_graph_set_loc(c->g, call->loc);
    ag_node *y = ag_loss(c->g, L->op, a[0].node, target, red);
    float lo = L->op == AG_OP_KL_NORMAL || L->op == AG_OP_WASSERSTEIN ? -INFINITY : 0;
    return built(c, y, lo, INFINITY, call, o, no, err);
}

/* ---------------------------------------------------------------- table -- */

static const bi_def builtins[] = {
    {"randn", 1, {"d0", "d1", "d2", "d3"}, 1, b_randn},
    {"rand", 1, {"d0", "d1", "d2", "d3"}, 1, b_rand},
    {"randint", 2, {"high", "d0", "d1", "d2", "d3"}, 1, b_randint},
    {"at", 2, {"table", "index", "like", "outside"}, 0, b_at},
    {"zeros", 1, {"d0", "d1", "d2", "d3"}, 1, b_zeros},
    {"ones", 1, {"d0", "d1", "d2", "d3"}, 1, b_zeros},
    {"randn_like", 1, {"input"}, 0, b_like},
    {"rand_like", 1, {"input"}, 0, b_like},
    {"zeros_like", 1, {"input"}, 0, b_like},
    {"ones_like", 1, {"input"}, 0, b_like},
    {"detach", 1, {"input"}, 0, b_detach},
    {"split", 2, {"input", "parts", "axis"}, 0, b_split},
    {"chunk", 2, {"input", "parts", "axis"}, 0, b_split},
    {"concat", 2, {"x0", "x1", "x2", "x3", "", "axis"}, 0, b_concat},
    {"flatten", 1, {"input"}, 0, b_flatten},
    {"one_hot", 2, {"labels", "classes"}, 0, b_one_hot},
    {"cycle", 2, {"count", "period"}, 0, b_cycle},
    {"interpolate", 3, {"a", "b", "steps"}, 0, b_interpolate},
    {"threshold", 2, {"input", "level"}, 0, b_bits},
    {"bernoulli", 1, {"p"}, 0, b_bits},
    {"exp", 1, {"input"}, 0, b_unary},
    {"log", 1, {"input"}, 0, b_unary},
    {"sqrt", 1, {"input"}, 0, b_unary},
    {"abs", 1, {"input"}, 0, b_unary},
    {"clamp", 1, {"input", "min", "max"}, 0, b_clamp},
    {"sum", 1, {"input", "axis", "keepdim"}, 0, b_reduce},
    {"mean", 1, {"input", "axis", "keepdim"}, 0, b_reduce},
    {"softmax", 1, {"input", "axis"}, 0, b_softmax},
    {"log_softmax", 1, {"input", "axis"}, 0, b_softmax},
    {"bce", 2, {"input", "target", "reduction"}, 0, b_loss},
    {"bce_with_logits", 2, {"input", "target", "reduction"}, 0, b_loss},
    {"mse", 2, {"input", "target", "reduction"}, 0, b_loss},
    {"l1", 2, {"input", "target", "reduction"}, 0, b_loss},
    {"cross_entropy", 2, {"input", "target", "reduction"}, 0, b_loss},
    {"kl_normal", 2, {"mu", "logvar", "reduction"}, 0, b_loss},
    {"hinge", 2, {"scores", "target", "reduction"}, 0, b_loss},
    {"wasserstein", 2, {"scores", "target", "reduction"}, 0, b_loss},
    {"slice", 2, {"input", "start", "end", "axis"}, 0, b_slice},
    {"categorical", 1, {"logits", "top_k"}, 0, b_categorical},
};

const bi_def *bi_find(const char *name)
{
    for (size_t k = 0; k < AG_COUNTOF(builtins); k++)
        if (strcmp(builtins[k].name, name) == 0) return &builtins[k];
    return NULL;
}

void bi_offer_names(void *b)
{
    for (size_t k = 0; k < AG_COUNTOF(builtins); k++) sg_offer(b, builtins[k].name);
}

int bi_call(ev_ctx *c, const bi_def *d, const ex_node *call, pv *outs, int *nout, ag_error *err)
{
    pv a[BI_MAX_PARAMS];
    memset(a, 0, sizeof a);
    ab_param params[BI_MAX_PARAMS];
    int nparams = 0;
    for (; nparams < BI_MAX_PARAMS && d->params[nparams]; nparams++)
        params[nparams] = (ab_param){.name = d->params[nparams]};
    ab_sig sig = {AB_CALL, nparams, d->nrequired, params, d->variadic};
    ab_state st = {.nargs = (int)call->nargs};
    for (size_t k = 0; k < call->nargs; k++) {
        const ex_arg *arg = &call->args[k];
        int at = ab_place(&sig, d->name, &st, arg->key, arg->value->loc, arg->key_loc, err);
        if (at < 0 || ev_eval(c, arg->value, &a[at], err)) return AG_ERR;
    }
    if (ab_missing(&sig, d->name, &st, call->loc, err)) return AG_ERR;
    return d->build(c, call, a, d->variadic ? st.npos : nparams, outs, nout, err);
}
