/* index.c — ops that make values from positions: one-hot classes, the batch size,
 * cycles of labels, interpolations between rows, random integers, and lookups in
 * per-timestep tables (a diffusion schedule); and the two ops that turn values into
 * bits: a threshold (binarized data) and Bernoulli draws (sampling pixel by pixel);
 * and categorical draws (sampling a token from logits). */
#include <math.h>
#include <stdlib.h>

#include "aigc/graph.h"
#include "build.h"

/* ---------------------------------------------------------------- one_hot -- */

static int one_hot_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    if (n->i[0] < 1 || n->i[0] > (1 << 24))
        return ag_errorf(err, n->loc, "one_hot: the class count must be in [1, 16777216], got %d", n->i[0]);
    if (x->shape.ndim == AG_MAX_DIMS)
        return ag_errorf(err, n->loc, "one_hot: the indices already have %d dimensions", AG_MAX_DIMS);
    n->shape = x->shape;
    n->shape.d[n->shape.ndim++] = n->i[0];
    return AG_OK;
}

static void one_hot_forward(ag_graph *g, ag_node *n)
{
    const float *x = n->src[0]->data;
    int64_t rows = ag_numel(&n->src[0]->shape);
    int c = n->i[0];
    for (int64_t r = 0; r < rows; r++) {
        float v = x[r];
        if (!(v >= 0 && v < c) || v != floorf(v)) {
            ag_fail(g, n, "one_hot: index %g is not a class in [0, %d)", v, c);
            return;
        }
        float *row = n->data + r * c;
        for (int k = 0; k < c; k++) row[k] = 0.0f;
        row[(int)v] = 1.0f;
    }
}

/* Indices are not differentiable: nothing flows back. */
const ag_op_def ag_def_one_hot = {
    .name = "one_hot", .min_src = 1, .max_src = 1, .flags = AG_DEF_NO_GRAD,
    .infer = one_hot_infer, .forward = one_hot_forward};

/* ------------------------------------------------------------- batch_size -- */

/* The last batch of an epoch is smaller: a loss summed over a batch and divided by
 * this is a per-sample value whatever the batch. */
static void batch_size_forward(ag_graph *g, ag_node *n) { n->data[0] = (float)ag_global_batch(g); }

const ag_op_def ag_def_batch_size = {.name = "batch_size", .forward = batch_size_forward};

/* ------------------------------------------------------------------ cycle -- */

static int cycle_infer(ag_node *n, ag_error *err)
{
    if (n->i[0] < 1) return ag_errorf(err, n->loc, "cycle: the period must be at least 1, got %d", n->i[0]);
    return AG_OK;
}

static void cycle_forward(ag_graph *g, ag_node *n)
{
    int64_t len = ag_numel(&n->shape);
    for (int64_t k = 0; k < len; k++) n->data[k] = (float)(k % n->i[0]);
}

const ag_op_def ag_def_cycle = {.name = "cycle", .infer = cycle_infer, .forward = cycle_forward};

/* ------------------------------------------------------------ interpolate -- */

/* Row r of a and b gives steps rows r*steps + j = a + (b - a) * j / (steps - 1): a
 * latent walk from one encoded image to another. */
static int interpolate_infer(ag_node *n, ag_error *err)
{
    const ag_node *a = n->src[0], *b = n->src[1];
    if (!ag_shape_eq(&a->shape, &b->shape) || a->shape.ndim < 1)
        return ag_errorf(err, n->loc, "interpolate: the two ends must have one shape [rows, ...]");
    if (n->i[0] < 2) return ag_errorf(err, n->loc, "interpolate: give at least 2 steps, got %d", n->i[0]);
    n->shape = a->shape;
    n->shape.d[0] *= n->i[0];
    return AG_OK;
}

static void interpolate_forward(ag_graph *g, ag_node *n)
{
    const ag_node *a = n->src[0];
    int steps = n->i[0];
    int64_t rows = a->shape.d[0], width = ag_numel(&a->shape) / rows;
    for (int64_t r = 0; r < rows; r++)
        for (int j = 0; j < steps; j++) {
            float t = (float)j / (float)(steps - 1);
            const float *x = a->data + r * width, *y = n->src[1]->data + r * width;
            float *out = n->data + (r * steps + j) * width;
            for (int64_t k = 0; k < width; k++) out[k] = x[k] + (y[k] - x[k]) * t;
        }
}

static void interpolate_backward(ag_graph *g, ag_node *n, unsigned need)
{
    const ag_node *a = n->src[0];
    int steps = n->i[0];
    int64_t rows = a->shape.d[0], width = ag_numel(&a->shape) / rows;
    for (int64_t r = 0; r < rows; r++)
        for (int j = 0; j < steps; j++) {
            float t = (float)j / (float)(steps - 1);
            const float *dy = n->grad + (r * steps + j) * width;
            for (int s = 0; s < 2; s++) {
                if (!(need >> s & 1)) continue;
                float w = s ? t : 1 - t, *dx = n->src[s]->grad + r * width;
                for (int64_t k = 0; k < width; k++) dx[k] += w * dy[k];
            }
        }
}

const ag_op_def ag_def_interpolate = {
    .name = "interpolate", .min_src = 2, .max_src = 2, .infer = interpolate_infer,
    .forward = interpolate_forward, .backward = interpolate_backward};

/* ---------------------------------------------------------------- randint -- */

static int randint_infer(ag_node *n, ag_error *err)
{
    if (n->i[0] < 1) return ag_errorf(err, n->loc, "randint: the bound must be at least 1, got %d", n->i[0]);
    return AG_OK;
}

/* rng_below is exact: no value is likelier than another, whatever the bound. */
static void randint_forward(ag_graph *g, ag_node *n)
{
    int64_t len = ag_numel(&n->shape), before, after;
    ag_shard_draws(g, n, &before, &after);
    rng_skip_below(g->rng, (uint64_t)n->i[0], before);
    for (int64_t k = 0; k < len; k++) n->data[k] = (float)rng_below(g->rng, (uint64_t)n->i[0]);
    rng_skip_below(g->rng, (uint64_t)n->i[0], after);
}

const ag_op_def ag_def_randint = {.name = "randint", .infer = randint_infer, .forward = randint_forward};

/* --------------------------------------------------------------- table_at -- */

/* table[t] per sample, shaped [N, 1, 1, 1] to broadcast against images: the schedule
 * values a diffusion step needs. Tables are constants and indices integers, so no
 * gradient flows to either. */
static int table_at_infer(ag_node *n, ag_error *err)
{
    const ag_node *t = n->src[0], *ix = n->src[1];
    if (t->shape.ndim != 1) return ag_errorf(err, n->loc, "at: the table must be 1-D, a value per timestep");
    int rank = n->i[0] ? n->i[0] : ix->shape.ndim;
    if (rank < ix->shape.ndim || rank > AG_MAX_DIMS)
        return ag_errorf(err, n->loc, "at: cannot shape %d-D indices to rank %d", ix->shape.ndim, rank);
    n->shape = ix->shape;
    for (int k = ix->shape.ndim; k < rank; k++) n->shape.d[k] = 1;
    n->shape.ndim = rank;
    n->batched = ix->batched;
    return AG_OK;
}

static void table_at_forward(ag_graph *g, ag_node *n)
{
    const ag_node *t = n->src[0], *ix = n->src[1];
    int64_t len = ag_numel(&ix->shape), size = t->shape.d[0];
    for (int64_t k = 0; k < len; k++) {
        float v = ix->data[k];
        if (v != floorf(v)) {
            ag_fail(g, n, "at: index %g is not a whole number", v);
            return;
        }
        n->data[k] = v >= 0 && v < size ? t->data[(int64_t)v] : n->f[0];
    }
}

const ag_op_def ag_def_table_at = {
    .name = "table_at", .min_src = 2, .max_src = 2, .flags = AG_DEF_NO_GRAD,
    .infer = table_at_infer, .forward = table_at_forward};

/* ------------------------------------------------------- threshold, bernoulli -- */

static int same_shape_infer(ag_node *n, ag_error *err)
{
    n->shape = n->src[0]->shape;
    return AG_OK;
}

static void threshold_forward(ag_graph *g, ag_node *n)
{
    const float *x = n->src[0]->data;
    int64_t len = ag_numel(&n->shape);
    for (int64_t k = 0; k < len; k++) n->data[k] = x[k] > n->f[0] ? 1.0f : 0.0f;
}

/* A step has no useful gradient: nothing flows back through it. */
const ag_op_def ag_def_threshold = {
    .name = "threshold", .min_src = 1, .max_src = 1, .flags = AG_DEF_NO_GRAD,
    .infer = same_shape_infer, .forward = threshold_forward};

static void bernoulli_forward(ag_graph *g, ag_node *n)
{
    const float *p = n->src[0]->data;
    int64_t len = ag_numel(&n->shape), before, after;
    ag_shard_draws(g, n, &before, &after);
    rng_skip_uniform(g->rng, before);
    for (int64_t k = 0; k < len; k++) {
        if (!(p[k] >= 0 && p[k] <= 1)) {
            ag_fail(g, n, "bernoulli: probability %g at element %lld is outside [0, 1]", p[k], (long long)k);
            return;
        }
        n->data[k] = rng_uniform(g->rng) < p[k] ? 1.0f : 0.0f;
    }
    rng_skip_uniform(g->rng, after);
}

const ag_op_def ag_def_bernoulli = {
    .name = "bernoulli", .min_src = 1, .max_src = 1, .flags = AG_DEF_NO_GRAD,
    .infer = same_shape_infer, .forward = bernoulli_forward};

/* ------------------------------------------------------------- categorical -- */

/* logits [..., V] -> one index per row, as a float. aux holds one row, sorted to find
 * the k-th largest logit: the rows left are those at or above it (ties at the k-th
 * value stay in). */
static int categorical_infer(ag_node *n, ag_error *err)
{
    const ag_node *x = n->src[0];
    if (x->shape.ndim < 1)
        return ag_errorf(err, n->loc, "categorical: the logits need a class dimension, got a single number");
    int v = x->shape.d[x->shape.ndim - 1];
    if (n->i[0] < 0)
        return ag_errorf(err, n->loc, "categorical: top_k must be at least 1, got %d", n->i[0]);
    n->shape = x->shape;
    n->shape.ndim--;
    n->batched = x->batched && n->shape.ndim > 0;
    n->aux_numel = v;
    return AG_OK;
}

static int descending(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void categorical_forward(ag_graph *g, ag_node *n)
{
    const ag_node *x = n->src[0];
    int v = x->shape.d[x->shape.ndim - 1], k = n->i[0] && n->i[0] < v ? n->i[0] : v;
    int64_t rows = ag_numel(&n->shape), before, after;
    ag_shard_draws(g, n, &before, &after);
    rng_skip_uniform(g->rng, before);
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x->data + r * v;
        float mx = -INFINITY;
        for (int j = 0; j < v; j++) {
            if (isnan(row[j]) || row[j] == INFINITY) {
                ag_fail(g, n, "categorical: logit %g at row %lld, class %d", row[j], (long long)r, j);
                return;
            }
            mx = fmaxf(mx, row[j]);
        }
        if (mx == -INFINITY) {
            ag_fail(g, n, "categorical: every logit of row %lld is -inf", (long long)r);
            return;
        }
        float cut = -INFINITY;
        if (k < v) {
            for (int j = 0; j < v; j++) n->aux[j] = row[j];
            qsort(n->aux, (size_t)v, sizeof *n->aux, descending);
            cut = n->aux[k - 1];
        }
        double total = 0;
        for (int j = 0; j < v; j++)
            if (row[j] >= cut) total += exp((double)row[j] - mx);
        /* The last kept class takes what rounding leaves of the draw. */
        double u = rng_uniform(g->rng) * total, acc = 0;
        int pick = -1;
        for (int j = 0; j < v; j++) {
            if (row[j] < cut) continue;
            pick = j;
            acc += exp((double)row[j] - mx);
            if (u < acc) break;
        }
        n->data[r] = (float)pick;
    }
    rng_skip_uniform(g->rng, after);
}

/* A draw has no gradient: nothing flows back. */
const ag_op_def ag_def_categorical = {
    .name = "categorical", .min_src = 1, .max_src = 1, .flags = AG_DEF_NO_GRAD,
    .infer = categorical_infer, .forward = categorical_forward};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_one_hot(ag_graph *g, ag_node *index, int classes)
{
    return bd_new1(g, AG_OP_ONE_HOT, index, NULL, BD_I(classes));
}

ag_node *ag_batch_size(ag_graph *g) { return ag_leaf(g, AG_OP_BATCH_SIZE, ag_shape0(), 0, NULL, NULL); }

ag_node *ag_cycle(ag_graph *g, int n, int period)
{
    return ag_leaf(g, AG_OP_CYCLE, ag_shape1(n), 0, NULL, BD_I(period));
}

ag_node *ag_interpolate(ag_graph *g, ag_node *a, ag_node *b, int steps)
{
    return bd_new2(g, AG_OP_INTERPOLATE, a, b, NULL, BD_I(steps));
}

ag_node *ag_randint(ag_graph *g, ag_shape shape, int batched, int high)
{
    return ag_leaf(g, AG_OP_RANDINT, shape, batched, NULL, BD_I(high));
}

ag_node *ag_table_at(ag_graph *g, ag_node *table, ag_node *index, float outside, int rank)
{
    return bd_new2(g, AG_OP_TABLE_AT, table, index, BD_F(outside), BD_I(rank));
}

ag_node *ag_threshold(ag_graph *g, ag_node *x, float t) { return bd_new1(g, AG_OP_THRESHOLD, x, BD_F(t), NULL); }
ag_node *ag_bernoulli(ag_graph *g, ag_node *p) { return bd_new1(g, AG_OP_BERNOULLI, p, NULL, NULL); }

ag_node *ag_categorical(ag_graph *g, ag_node *logits, int top_k)
{
    return bd_new1(g, AG_OP_CATEGORICAL, logits, NULL, BD_I(top_k));
}
