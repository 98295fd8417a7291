/*
 * test_shard.c — a batch run as shards (ag_graph_set_shard), as data-parallel ranks run
 * it, in one process: each shard draws the very values the whole batch draws for its
 * rows, leaves the generator where the whole batch leaves it, and the shards' losses
 * and gradients add up to the whole batch's.
 *
 * The graph has every random op a step can hold and every reduction that divides by
 * the batch: y = dropout(tanh(x W^T + b) + noise); loss = mse(y, t) + mean(y) +
 * mean_axis(y, 0) summed + bce(sigmoid(y), u) + kl_normal(y, y) / batch.
 */
#include <math.h>
#include <string.h>

#include "aigc/graph.h"
#include "tap.h"

enum { B = 7, IN = 3, OUT = 4 };

static const ag_loc no_loc = {0};

/* The same state: a spare counts only while it is pending. */
static int same_rng(const rng *a, const rng *b)
{
    return !memcmp(a->s, b->s, sizeof a->s) && a->has_spare == b->has_spare && (!a->has_spare || a->spare == b->spare);
}

typedef struct net {
    ag_params ps;
    rng r;
    ag_graph g;
    ag_node *x, *t, *draws[6], *loss;
    ag_bwplan *bw;
    int ndraws;
} net;

static void build(net *n)
{
    ag_params_init(&n->ps);
    int w = ag_params_add(&n->ps, "W", ag_shape2(OUT, IN), no_loc);
    int b = ag_params_add(&n->ps, "b", ag_shape1(OUT), no_loc);
    ag_params_alloc(&n->ps);
    rng init;
    rng_seed(&init, 11);
    rng_fill_uniform(&init, n->ps.data, n->ps.total, -1, 1);
    ag_graph *g = &n->g;
    ag_graph_init(g, &n->ps, &n->r);
    n->x = ag_input(g, "x", ag_shape2(0, IN), 1);
    n->t = ag_input(g, "t", ag_shape2(0, OUT), 1);
    ag_node *h = ag_unary(g, AG_OP_TANH, ag_linear(g, n->x, ag_param(g, w), ag_param(g, b)));
    ag_node *noise = ag_randn(g, ag_shape2(0, OUT), 1, 0, 0.1f);
    ag_node *u = ag_rand_like(g, h);
    ag_node *k = ag_randint(g, ag_shape2(0, OUT), 1, 5);
    ag_node *y = ag_dropout(g, ag_binary(g, AG_OP_ADD, h, ag_binary(g, AG_OP_MUL, noise, ag_randn_like(g, h))), 0.3f);
    ag_node *coin = ag_bernoulli(g, u);
    n->ndraws = 0;
    ag_node *draws[] = {noise, u, k, y, coin};
    for (int j = 0; j < 5; j++) n->draws[n->ndraws++] = draws[j];
    ag_node *terms[] = {
        ag_loss(g, AG_OP_MSE, y, n->t, AG_RED_MEAN),
        ag_mean(g, y),
        ag_sum(g, ag_mean_axis(g, y, 0, 0)),
        ag_loss(g, AG_OP_BCE, ag_unary(g, AG_OP_SIGMOID, y), u, AG_RED_MEAN),
        ag_binary(g, AG_OP_DIV, ag_loss(g, AG_OP_KL_NORMAL, y, y, AG_RED_SUM), ag_batch_size(g)),
        ag_sum(g, ag_binary(g, AG_OP_MUL, y, ag_binary(g, AG_OP_ADD, k, coin))),
    };
    ag_node *loss = terms[0];
    for (int j = 1; j < 6; j++) loss = ag_binary(g, AG_OP_ADD, loss, terms[j]);
    n->loss = loss;
    ag_error err;
    n->bw = ag_backward_plan(g, loss, (int[]){w, b}, 2, &err);
    AG_ASSERT(n->bw && ag_graph_plan(g, B, &err) == AG_OK);
}

/* Rows [lo, lo + rows) of the batch: x and t from a fixed generator, the same rows
 * whoever runs them. */
static void run(net *n, int lo, int rows, int global)
{
    rng_seed(&n->r, 5);
    ag_graph_set_shard(&n->g, lo, rows, global);
    rng data;
    rng_seed(&data, 3);
    float x[B * IN], t[B * OUT];
    rng_fill_uniform(&data, x, B * IN, -1, 1);
    rng_fill_uniform(&data, t, B * OUT, -1, 1);
    memcpy(n->x->data, x + lo * IN, (size_t)rows * IN * sizeof(float));
    memcpy(n->t->data, t + lo * OUT, (size_t)rows * OUT * sizeof(float));
    ag_forward(&n->g, 0, n->g.n);
    ag_backward(&n->g, n->bw);
}

int main(void)
{
    net whole, part;
    build(&whole);
    build(&part);
    run(&whole, 0, B, B);
    rng after = whole.r;
    float grad[OUT * IN + OUT];
    memset(grad, 0, sizeof grad);
    double loss = 0;
    int same = 1, stream = 1;
    const int cuts[] = {0, 3, 5, B};
    for (int c = 0; c < 3; c++) {
        int lo = cuts[c], rows = cuts[c + 1] - cuts[c];
        run(&part, lo, rows, B);
        for (int j = 0; j < part.ndraws; j++) {
            int64_t per = ag_numel(&part.draws[j]->shape) / rows;
            same &= !memcmp(part.draws[j]->data, whole.draws[j]->data + lo * per, (size_t)(rows * per) * sizeof(float));
        }
        stream &= same_rng(&part.r, &after);
        loss += part.loss->data[0];
        for (int k = 0; k < OUT * IN + OUT; k++) grad[k] += part.ps.grad[k];
    }
    ok(same, "each shard draws the whole batch's noise, uniforms, integers, dropout masks and coins for its rows");
    ok(stream, "and leaves the generator where the whole batch leaves it");
    is_close(loss, whole.loss->data[0], 1e-6, 1e-5, "the shards' losses add up to the whole batch's (%.7g, %.7g)", loss,
             (double)whole.loss->data[0]);
    int close = 1;
    for (int k = 0; k < OUT * IN + OUT; k++) close &= tap_close(grad[k], whole.ps.grad[k], 1e-6, 1e-5);
    ok(close, "and their gradients to the whole batch's");

    ag_graph_set_batch(&part.g, 2);
    ok(part.g.global_batch == 2 && part.g.shard_lo == 0, "setting a batch ends the shard");

    rng r;
    rng_seed(&r, 9);
    for (int k = 0; k < 3; k++) rng_normal(&r); /* a spare is pending */
    rng skip = r, draw = r;
    rng_skip_normal(&skip, 5);
    for (int k = 0; k < 5; k++) rng_normal(&draw);
    ok(same_rng(&skip, &draw), "skipping 5 normals with a spare pending leaves the generator as drawing them");
    rng_skip_normal(&skip, 4);
    for (int k = 0; k < 4; k++) rng_normal(&draw);
    ok(same_rng(&skip, &draw) && rng_normal(&skip) == rng_normal(&draw), "and 4 without one");

    ag_graph_free(&whole.g);
    ag_graph_free(&part.g);
    ag_params_free(&whole.ps);
    ag_params_free(&part.ps);
    return tap_done();
}
