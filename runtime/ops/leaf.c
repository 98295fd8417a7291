/* leaf.c — the nodes a graph starts from: inputs, parameters, constants and random
 * draws, their "shaped like another node" variants, and detach.
 *
 * Random leaves draw from g->rng at every forward, in node order on one thread, so a
 * seed fixes every value of a run. */
#include "aigc/graph.h"
#include "build.h"

/* ------------------------------------------------------------------- leaves -- */

/* The maker set the shape (and the core set a batched dim 0 to the batch): only sizes
 * a user could have got wrong are checked. */
static int leaf_infer(ag_node *n, ag_error *err)
{
    AG_ASSERT(n->shape.ndim >= 0 && n->shape.ndim <= AG_MAX_DIMS);
    for (int k = 0; k < n->shape.ndim; k++)
        if (n->shape.d[k] <= 0)
            return ag_errorf(err, n->loc, "%s: dimension %d has size %d; sizes must be positive",
                             ag_op_defs[n->op]->name, k, n->shape.d[k]);
    return AG_OK;
}

static void full_forward(ag_graph *g, ag_node *n)
{
    int64_t len = ag_numel(&n->shape);
    for (int64_t k = 0; k < len; k++) n->data[k] = n->f[0];
}

/* In a shard, the other rows' draws are made and discarded (ag_shard_draws). */
static void draw_normal(ag_graph *g, ag_node *n, float mean, float std)
{
    int64_t before, after;
    ag_shard_draws(g, n, &before, &after);
    rng_skip_normal(g->rng, before);
    rng_fill_normal(g->rng, n->data, ag_numel(&n->shape), mean, std);
    rng_skip_normal(g->rng, after);
}

static void draw_uniform(ag_graph *g, ag_node *n, float lo, float hi)
{
    int64_t before, after;
    ag_shard_draws(g, n, &before, &after);
    rng_skip_uniform(g->rng, before);
    rng_fill_uniform(g->rng, n->data, ag_numel(&n->shape), lo, hi);
    rng_skip_uniform(g->rng, after);
}

static void randn_forward(ag_graph *g, ag_node *n) { draw_normal(g, n, n->f[0], n->f[1]); }

static void rand_forward(ag_graph *g, ag_node *n) { draw_uniform(g, n, n->f[0], n->f[1]); }

/* Inputs are written from outside; a parameter's data is its slice of the params slab. */
const ag_op_def ag_def_input = {.name = "input", .infer = leaf_infer};
const ag_op_def ag_def_param = {.name = "param", .infer = leaf_infer};
const ag_op_def ag_def_full = {.name = "full", .infer = leaf_infer, .forward = full_forward};
const ag_op_def ag_def_randn = {.name = "randn", .infer = leaf_infer, .forward = randn_forward};
const ag_op_def ag_def_rand = {.name = "rand", .infer = leaf_infer, .forward = rand_forward};

/* ------------------------------------------------------ shaped like src 0 -- */

static int like_infer(ag_node *n, ag_error *err)
{
    n->shape = n->src[0]->shape;
    n->batched = n->src[0]->batched;
    return AG_OK;
}

/* As torch.randn_like and torch.rand_like: standard normal, uniform on [0, 1). */
static void randn_like_forward(ag_graph *g, ag_node *n) { draw_normal(g, n, 0.0f, 1.0f); }

static void rand_like_forward(ag_graph *g, ag_node *n) { draw_uniform(g, n, 0.0f, 1.0f); }

const ag_op_def ag_def_full_like = {.name = "full_like", .min_src = 1, .max_src = 1,
                                    .flags = AG_DEF_NO_GRAD, .infer = like_infer,
                                    .forward = full_forward};
const ag_op_def ag_def_randn_like = {.name = "randn_like", .min_src = 1, .max_src = 1,
                                     .flags = AG_DEF_NO_GRAD, .infer = like_infer,
                                     .forward = randn_like_forward};
const ag_op_def ag_def_rand_like = {.name = "rand_like", .min_src = 1, .max_src = 1,
                                    .flags = AG_DEF_NO_GRAD, .infer = like_infer,
                                    .forward = rand_like_forward};

/* The output is src 0's memory, so detach costs nothing at run time; only the backward
 * planner sees it, and stops there. */
const ag_op_def ag_def_detach = {.name = "detach", .min_src = 1, .max_src = 1,
                                 .flags = AG_DEF_NO_GRAD | AG_DEF_ALIAS_DATA,
                                 .infer = like_infer};

/* ----------------------------------------------------------------- builders -- */

ag_node *ag_input(ag_graph *g, const char *name, ag_shape shape, int batched)
{
    ag_node *n = ag_leaf(g, AG_OP_INPUT, shape, batched, NULL, NULL);
    if (n) n->name = name;
    return n;
}

ag_node *ag_full(ag_graph *g, ag_shape shape, int batched, float value)
{
    return ag_leaf(g, AG_OP_FULL, shape, batched, BD_F(value), NULL);
}

ag_node *ag_randn(ag_graph *g, ag_shape shape, int batched, float mean, float std)
{
    return ag_leaf(g, AG_OP_RANDN, shape, batched, BD_F(mean, std), NULL);
}

ag_node *ag_rand(ag_graph *g, ag_shape shape, int batched, float lo, float hi)
{
    return ag_leaf(g, AG_OP_RAND, shape, batched, BD_F(lo, hi), NULL);
}

ag_node *ag_full_like(ag_graph *g, ag_node *x, float value)
{
    return bd_new1(g, AG_OP_FULL_LIKE, x, BD_F(value), NULL);
}

ag_node *ag_randn_like(ag_graph *g, ag_node *x) { return bd_new1(g, AG_OP_RANDN_LIKE, x, NULL, NULL); }
ag_node *ag_rand_like(ag_graph *g, ag_node *x) { return bd_new1(g, AG_OP_RAND_LIKE, x, NULL, NULL); }
ag_node *ag_detach(ag_graph *g, ag_node *x) { return bd_new1(g, AG_OP_DETACH, x, NULL, NULL); }
