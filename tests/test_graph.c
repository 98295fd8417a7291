/*
 * test_graph.c — the engine core: backward plans, gradient accumulation, batch
 * changes, errors, determinism, the index ops and aliasing.
 *
 * The plans are checked on a GAN-shaped graph, where getting them wrong is silent:
 * the generator's update must not touch the discriminator's gradients, and detach
 * must keep the discriminator's pass out of the generator.
 */
#include <math.h>
#include <string.h>

#include "aigc/graph.h"
#include "gradcheck.h"
#include "tap.h"

static const ag_loc no_loc = {0};

static void fill(rng *r, float *x, int64_t n) { rng_fill_uniform(r, x, n, -1.0f, 1.0f); }

static int all_equal(const float *x, int64_t n, float v)
{
    for (int64_t k = 0; k < n; k++)
        if (x[k] != v) return 0;
    return 1;
}

static int any_nonzero(const float *x, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (x[k] != 0.0f) return 1;
    return 0;
}

static int plan_has(const ag_bwplan *p, const ag_node *n)
{
    for (int k = 0; k < p->nzero; k++)
        if (p->zero[k] == n) return 1;
    for (int k = 0; k < p->nsteps; k++)
        if (p->steps[k].node == n) return 1;
    return 0;
}

static unsigned need_of(const ag_bwplan *p, const ag_node *n)
{
    for (int k = 0; k < p->nsteps; k++)
        if (p->steps[k].node == n) return p->steps[k].need;
    return 0;
}

static unsigned assign_of(const ag_bwplan *p, const ag_node *n)
{
    for (int k = 0; k < p->nsteps; k++)
        if (p->steps[k].node == n) return p->steps[k].assign;
    return 0;
}

/* ---- backward plans on a GAN ---------------------------------------------------- */

enum { GW, GB, DW, DB };  /* parameter indices */

/* D(h) = sigmoid(linear(h, Dw, Db)) */
static ag_node *disc(ag_graph *g, ag_node *h)
{
    return ag_unary(g, AG_OP_SIGMOID, ag_linear(g, h, ag_param(g, DW), ag_param(g, DB)));
}

static void test_gan_plans(void)
{
    rng r;
    rng_seed(&r, 7);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_add(&ps, "G.0.weight", ag_shape2(4, 3), no_loc);
    ag_params_add(&ps, "G.0.bias", ag_shape1(4), no_loc);
    ag_params_add(&ps, "D.0.weight", ag_shape2(1, 4), no_loc);
    ag_params_add(&ps, "D.0.bias", ag_shape1(1), no_loc);
    ag_params_alloc(&ps);
    fill(&r, ps.data, ps.total);

    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", ag_shape2(0, 4), 1);
    ag_node *z = ag_randn(&g, ag_shape2(0, 3), 1, 0, 1);
    ag_node *fake = ag_unary(&g, AG_OP_TANH, ag_linear(&g, z, ag_param(&g, GW), ag_param(&g, GB)));
    ag_node *dx = disc(&g, x);
    ag_node *l_real = ag_loss(&g, AG_OP_BCE, dx, ag_full_like(&g, dx, 1), AG_RED_MEAN);
    ag_node *df = disc(&g, ag_detach(&g, fake));
    ag_node *l_fake = ag_loss(&g, AG_OP_BCE, df, ag_full_like(&g, df, 0), AG_RED_MEAN);
    ag_node *loss_d = ag_binary(&g, AG_OP_ADD, l_real, l_fake);
    ag_node *dg_lin = ag_linear(&g, fake, ag_param(&g, DW), ag_param(&g, DB));
    ag_node *dg = ag_unary(&g, AG_OP_SIGMOID, dg_lin);
    ag_node *loss_g = ag_loss(&g, AG_OP_BCE, dg, ag_full_like(&g, dg, 1), AG_RED_MEAN);
    if (!ok(loss_g != NULL, "GAN graph builds")) {
        diag("%s", g.err.msg);
        return;
    }
    ok(g.n == 22, "GAN graph has 22 nodes (got %d)", g.n);

    ag_error err;
    ag_bwplan *pd = ag_backward_plan(&g, loss_d, (int[]){DW, DB}, 2, &err);
    ag_bwplan *pg = ag_backward_plan(&g, loss_g, (int[]){GW, GB}, 2, &err);
    ok(pd && pg, "both plans are made");
    ok(ag_graph_plan(&g, 8, &err) == AG_OK, "GAN graph plans at batch 8");
    if (!pd || !pg) return;

    /* loss_D: add, two bce, two sigmoid, two linear over D. Of the 9 grads, those that
     * the first call to reach them writes outright are not zeroed: the sigmoids' (bce),
     * the linears' (sigmoid), Dw's and Db's (the linear on the fake, in backward order).
     * add, which broadcasts, adds into the two bce values: those 2 are zeroed, and the
     * loss's own is set. */
    ok(pd->nsteps == 7, "loss_D plan: 7 backward steps (got %d)", pd->nsteps);
    ok(pd->nzero == 2, "loss_D plan: 2 of 9 grads zeroed (got %d)", pd->nzero);
    ok(assign_of(pd, dx->src[0]) == 0, "loss_D plan: the linear on real data adds into Dw and Db (assign %u)",
       assign_of(pd, dx->src[0]));
    ok(assign_of(pd, df->src[0]) == 6u, "loss_D plan: the linear on the fake writes Dw and Db (assign %u)",
       assign_of(pd, df->src[0]));
    /* loss_G: bce, sigmoid, linear over D (input only), tanh, linear over G: none is
     * zeroed. */
    ok(pg->nsteps == 5, "loss_G plan: 5 backward steps (got %d)", pg->nsteps);
    ok(pg->nzero == 0, "loss_G plan: none of 7 grads zeroed (got %d)", pg->nzero);

    ag_node *gw = g.param_node[GW], *gb = g.param_node[GB];
    ag_node *dw = g.param_node[DW], *db = g.param_node[DB];
    ok(!plan_has(pd, gw) && !plan_has(pd, gb) && !plan_has(pd, fake) && !plan_has(pd, z),
       "detach keeps G out of loss_D's plan");
    ok(!plan_has(pg, dw) && !plan_has(pg, db) && !plan_has(pg, dx) && !plan_has(pg, df),
       "loss_G's plan holds neither D's params nor D's real/fake passes");
    ok(need_of(pg, dg_lin) == 1u, "loss_G's plan asks D's linear for its input grad only (need %u)",
       need_of(pg, dg_lin));
    ok(pd->steps[0].node == loss_d, "a plan starts at its loss");
    ok(need_of(pg, fake->src[0]) == 6u, "loss_G's plan asks G's linear for W and b, not the noise (need %u)",
       need_of(pg, fake->src[0]));

    fill(&r, x->data, 8 * 4);
    ag_graph_set_batch(&g, 8);
    ok(ag_forward(&g, 0, g.n) == AG_OK, "GAN forward runs");

    /* The G pass leaves D's grads as they were. */
    for (int k = 0; k < 4; k++) dw->grad[k] = 42.0f;
    db->grad[0] = 42.0f;
    ag_backward(&g, pg);
    ok(all_equal(dw->grad, 4, 42.0f) && db->grad[0] == 42.0f, "loss_G's backward leaves D's grads untouched");
    ok(any_nonzero(gw->grad, 12) && any_nonzero(gb->grad, 4), "loss_G's backward fills G's grads");

    /* The D pass leaves G's grads as they were. */
    for (int k = 0; k < 12; k++) gw->grad[k] = -7.0f;
    for (int k = 0; k < 4; k++) gb->grad[k] = -7.0f;
    ag_backward(&g, pd);
    ok(all_equal(gw->grad, 12, -7.0f) && all_equal(gb->grad, 4, -7.0f),
       "loss_D's backward leaves G's grads untouched (detach)");
    ok(any_nonzero(dw->grad, 4) && dw->grad[0] != 42.0f, "loss_D's backward fills D's grads");

    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* ---- a parameter used twice ----------------------------------------------------- */

/* Two calls of one model M(h) = linear(h, W, b): M(tanh(M(x))). */
static ag_node *build_twice(ag_graph *g, ag_node **in, void *ctx)
{
    ag_node *h = ag_unary(g, AG_OP_TANH, ag_linear(g, in[2], in[0], in[1]));
    return ag_linear(g, h, in[0], in[1]);
}

/* A value with several consumers: the last one built is the first to reach h in
 * backward, and writes h's grad (tanh); mul then adds to it twice. With a reshape of h
 * among them, h's grad is shared with the reshape's and is zeroed instead. */
static ag_node *build_fanout(ag_graph *g, ag_node **in, void *ctx)
{
    ag_node *h = ag_linear(g, in[2], in[0], in[1]);
    ag_node *y = ag_binary(g, AG_OP_MUL, h, h);
    if (ctx) y = ag_binary(g, AG_OP_ADD, y, ag_reshape(g, h, 2, (int[]){4, 3}));
    return ag_binary(g, AG_OP_ADD, y, ag_unary(g, AG_OP_TANH, h));
}

static void test_shared_param(void)
{
    gc_input in[] = {
        {.shape = ag_shape2(3, 3), .lo = -1, .hi = 1},
        {.shape = ag_shape1(3), .lo = -1, .hi = 1},
        {.shape = ag_shape2(4, 3), .lo = -1, .hi = 1, .no_grad = 1},
    };
    gc_check("a model called twice: both calls' gradients meet in W and b", 3, in, build_twice, NULL);
    gc_check("one value, three consumers: the first writes its grad, the others add", 3, in,
             build_fanout, NULL);
    gc_check("one value, four consumers, one a reshape: its grad is zeroed and added to", 3,
             in, build_fanout, (void *)1);

    /* By hand: loss = sum(linear(x1, W) + linear(x2, W)), so dW[o][i] = sum_r x1[r][i] + x2[r][i]. */
    rng r;
    rng_seed(&r, 3);
    ag_params ps;
    ag_params_init(&ps);
    int w = ag_params_add(&ps, "M.weight", ag_shape2(2, 3), no_loc);
    ag_params_alloc(&ps);
    fill(&r, ps.data, ps.total);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x1 = ag_input(&g, "x1", ag_shape2(0, 3), 1);
    ag_node *x2 = ag_input(&g, "x2", ag_shape2(0, 3), 1);
    ag_node *y1 = ag_linear(&g, x1, ag_param(&g, w), NULL);
    ag_node *y2 = ag_linear(&g, x2, ag_param(&g, w), NULL);
    ok(y1 && y2 && y1->src[1] == y2->src[1], "one node per parameter, however many calls");
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_ADD, y1, y2));
    ag_error err;
    ag_bwplan *bw = ag_backward_plan(&g, loss, &w, 1, &err);
    ok(bw && ag_graph_plan(&g, 4, &err) == AG_OK, "plans");
    fill(&r, x1->data, 12);
    fill(&r, x2->data, 12);
    ag_forward(&g, 0, g.n);
    ag_backward(&g, bw);
    double worst = 0;
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < 3; i++) {
            double want = 0;
            for (int row = 0; row < 4; row++) want += x1->data[row * 3 + i] + x2->data[row * 3 + i];
            worst = fmax(worst, fabs(ps.p[w].grad[o * 3 + i] - want));
        }
    ok(worst < 1e-5, "dW is the sum over both calls (worst error %.2g)", worst);
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* ---- dynamic batch -------------------------------------------------------------- */

typedef struct small_net {
    ag_graph g;
    ag_node *x, *out, *loss;
    ag_bwplan *bw;
} small_net;

/* A graph whose values depend on the batch several ways: a mean over the batch, a
 * reshape, a concat, the batch size as a value. */
static int small_net_build(small_net *n, ag_params *ps, rng *r, int max_batch)
{
    ag_graph *g = &n->g;
    ag_graph_init(g, ps, r);
    n->x = ag_input(g, "x", ag_shape3(0, 2, 3), 1);
    ag_node *flat = ag_flatten(g, n->x);
    ag_node *h = ag_unary(g, AG_OP_TANH, ag_linear(g, flat, ag_param(g, 0), ag_param(g, 1)));
    ag_node *cat = ag_concat(g, 2, (ag_node *[]){h, flat}, 1);
    ag_node *centered = ag_binary(g, AG_OP_SUB, cat, ag_mean_axis(g, cat, 0, 1));
    n->out = ag_softmax(g, centered, -1);
    ag_node *per = ag_binary(g, AG_OP_DIV, ag_sum(g, ag_binary(g, AG_OP_MUL, n->out, cat)), ag_batch_size(g));
    n->loss = per;
    ag_error err;
    if (!n->loss) return AG_ERR;
    n->bw = ag_backward_plan(g, n->loss, (int[]){0, 1}, 2, &err);
    if (!n->bw) return AG_ERR;
    return ag_graph_plan(g, max_batch, &err);
}

/* small_net's parameters, random. */
static void small_params(ag_params *ps, rng *r)
{
    ag_params_init(ps);
    ag_params_add(ps, "fc.weight", ag_shape2(4, 6), no_loc);
    ag_params_add(ps, "fc.bias", ag_shape1(4), no_loc);
    ag_params_alloc(ps);
    fill(r, ps->data, ps->total);
}

static void test_dynamic_batch(void)
{
    rng r;
    rng_seed(&r, 11);
    ag_params ps;
    small_params(&ps, &r);

    float data[8 * 6];
    fill(&r, data, 8 * 6);

    small_net big, small;
    int built = small_net_build(&big, &ps, &r, 8) == AG_OK;
    built &= small_net_build(&small, &ps, &r, 3) == AG_OK;
    if (!ok(built, "the same graph plans at batch 8 and at batch 3")) return;

    ag_graph_set_batch(&big.g, 8);
    memcpy(big.x->data, data, sizeof data);
    ag_forward(&big.g, 0, big.g.n);
    ag_backward(&big.g, big.bw);
    ok(big.out->shape.d[0] == 8, "batch 8: output has 8 rows");

    ag_graph_set_batch(&big.g, 3);
    ok(big.out->shape.d[0] == 3 && big.out->shape.d[1] == 10, "batch 3: output shape follows [3, 10]");
    memcpy(big.x->data, data, 3 * 6 * sizeof(float));
    ag_forward(&big.g, 0, big.g.n);
    ag_backward(&big.g, big.bw);
    float out8[3 * 10], loss8 = big.loss->data[0], gw8[24], gb8[4];
    memcpy(out8, big.out->data, sizeof out8);
    memcpy(gw8, ps.p[0].grad, sizeof gw8);
    memcpy(gb8, ps.p[1].grad, sizeof gb8);

    memcpy(small.x->data, data, 3 * 6 * sizeof(float));
    ag_forward(&small.g, 0, small.g.n);
    ag_backward(&small.g, small.bw);
    double worst = 0;
    for (int k = 0; k < 30; k++) worst = fmax(worst, fabs(out8[k] - small.out->data[k]));
    ok(worst < 1e-6, "batch 3 on a graph planned for 8: outputs match a graph planned at 3 (%.2g)", worst);
    is_close(loss8, small.loss->data[0], 1e-6, 1e-6, "batch 3: same loss");
    worst = 0;
    for (int k = 0; k < 24; k++) worst = fmax(worst, fabs(gw8[k] - ps.p[0].grad[k]));
    for (int k = 0; k < 4; k++) worst = fmax(worst, fabs(gb8[k] - ps.p[1].grad[k]));
    ok(worst < 1e-6, "batch 3: same parameter gradients (%.2g)", worst);

    ag_graph_set_batch(&big.g, 8);
    ok(big.out->shape.d[0] == 8, "back to batch 8");

    ag_graph_free(&big.g);
    ag_graph_free(&small.g);
    ag_params_free(&ps);
}

/* ---- copies for forward runs elsewhere ------------------------------------------ */

/* small_net with noise and a constant table: its copy computes what it computes, in
 * memory of its own, drawing from its own generator. */
static void test_copy(void)
{
    rng r;
    rng_seed(&r, 13);
    ag_params ps;
    small_params(&ps, &r);
    small_net a;
    ag_graph *g = &a.g;
    ag_graph_init(g, &ps, &r);
    a.x = ag_input(g, "x", ag_shape3(0, 2, 3), 1);
    ag_node *table = ag_input(g, "table", ag_shape1(10), 0);
    ag_node *h = ag_linear(g, ag_flatten(g, a.x), ag_param(g, 0), ag_param(g, 1));
    ag_node *noisy = ag_binary(g, AG_OP_ADD, ag_unary(g, AG_OP_TANH, h), ag_randn_like(g, h));
    ag_node *t = ag_binary(g, AG_OP_MUL, ag_sum(g, table), ag_batch_size(g));
    a.out = ag_binary(g, AG_OP_ADD, noisy, t);
    ag_keep(g, a.out);  /* a copy reuses the buffers of the values not kept */
    ag_keep(g, t);
    ag_error err;
    a.bw = ag_backward_plan(g, ag_mean(g, a.out), (int[]){0, 1}, 2, &err);
    if (!ok(a.bw && ag_graph_plan(g, 8, &err) == AG_OK, "a graph with noise and a table plans")) return;
    for (int k = 0; k < 10; k++) table->data[k] = (float)k;
    fill(&r, a.x->data, 8 * 6);
    ag_graph_set_batch(g, 5);

    rng rc;
    ag_graph c;
    if (!ok(ag_graph_copy(&c, g, &rc, 0, &err) == AG_OK, "ag_graph_copy copies it")) return;
    ag_node *cx = c.nodes[a.x->id], *cout = c.nodes[a.out->id];
    int own = c.n == g->n && cx->data != a.x->data && cout->data != a.out->data &&
              c.nodes[table->id]->data != table->data;
    for (int k = 0; k < c.n; k++) own &= !c.nodes[k]->grad || c.nodes[k]->op == AG_OP_PARAM;
    ok(own && c.nodes[0]->op == g->nodes[0]->op, "... with memory of its own and no gradients");
    ok(c.nodes[h->id]->src[1]->data == ps.p[0].data, "... and the same parameters");

    ag_graph_set_batch(&c, 5);
    memcpy(cx->data, a.x->data, 5 * 6 * sizeof(float));
    rng_seed(&r, 99);
    rng_seed(&rc, 99);
    ag_forward(g, 0, g->n);
    ag_forward(&c, 0, c.n);
    ok(cout->shape.d[0] == 5 && cout->shape.d[1] == 4 &&
           !memcmp(cout->data, a.out->data, 5 * 4 * sizeof(float)),
       "... which gives the same values from the same input and seed");
    ok(c.nodes[t->id]->data[0] == 45.0f * 5, "... its table copied: the table's sum times the batch is %g",
       c.nodes[t->id]->data[0]);

    ag_graph d;
    ok(ag_graph_copy(&d, g, &rc, 64, &err) == AG_ERR && strstr(err.msg, "more than the 0 MB left"),
       "a copy that does not fit its memory limit is refused: %s", err.msg);
    ag_graph_free(&c);
    ag_graph_free(g);
    ag_params_free(&ps);
}

/* ---- buffers shared by lifetime in forward-only graphs -------------------------- */

/* Three layers of a convolutional net, [B, 2, 6, 6] -> [B, 72], with what the planner
 * must mind: a reshape (an alias), an activation fused into its linear layer, a
 * concat of an early value with a late one, group norm's and conv's op memory, noise. */
static ag_node *conv_net(ag_graph *g, ag_node *x)
{
    ag_node *c1 = ag_unary(g, AG_OP_SILU, ag_conv2d(g, x, ag_param(g, 0), ag_param(g, 1), 1, 1));
    ag_node *c2 = ag_group_norm(g, ag_conv2d(g, c1, ag_param(g, 2), NULL, 1, 1), 2, NULL, NULL, 1e-5f);
    ag_node *both = ag_concat(g, 2, (ag_node *[]){c1, ag_unary(g, AG_OP_TANH, c2)}, 1);
    ag_node *pooled = ag_avg_pool2d(g, both, 2, 0);
    ag_node *h = ag_unary(g, AG_OP_GELU, ag_linear(g, ag_flatten(g, pooled), ag_param(g, 3), NULL));
    return ag_binary(g, AG_OP_ADD, ag_affine(g, h, 0.5f, 0.0f), ag_randn_like(g, h));
}

static void conv_params(ag_params *ps, rng *r)
{
    ag_params_init(ps);
    ag_params_add(ps, "c1.weight", ag_shape4(4, 2, 3, 3), no_loc);
    ag_params_add(ps, "c1.bias", ag_shape1(4), no_loc);
    ag_params_add(ps, "c2.weight", ag_shape4(4, 4, 3, 3), no_loc);
    ag_params_add(ps, "fc.weight", ag_shape2(72, 8 * 3 * 3), no_loc);
    ag_params_alloc(ps);
    fill(r, ps->data, ps->total);
}

/* The net twice in a row on its own output, so that values die early and late; mid is
 * the first net's output, kept, which the second's values would otherwise take over. */
static ag_node *reuse_graph(ag_graph *g, ag_params *ps, rng *r, int reuse, ag_node **x, ag_node **mid)
{
    ag_graph_init(g, ps, r);
    g->reuse = reuse;
    g->training = 0;
    *x = ag_input(g, "x", ag_shape4(0, 2, 6, 6), 1);
    *mid = conv_net(g, *x);
    ag_node *y2 = conv_net(g, ag_reshape(g, ag_affine(g, *mid, 1.0f, 0.0f), 4, (int[]){-1, 2, 6, 6}));
    ag_node *out = ag_binary(g, AG_OP_SUB, y2, ag_reshape(g, *x, 2, (int[]){-1, 72}));
    if (out) ag_keep(g, *mid), ag_keep(g, out);
    return out;
}

static void test_reuse(void)
{
    rng r;
    rng_seed(&r, 17);
    ag_params ps;
    conv_params(&ps, &r);
    ag_graph whole, shared;
    ag_node *wx, *sx, *wmid, *smid;
    ag_node *wout = reuse_graph(&whole, &ps, &r, 0, &wx, &wmid);
    ag_node *sout = reuse_graph(&shared, &ps, &r, 1, &sx, &smid);
    ag_error err;
    if (!ok(wout && sout, "the nets build")) {
        diag("%s %s", whole.err.msg, shared.err.msg);
        return;
    }
    if (!ok(ag_graph_plan(&whole, 4, &err) == AG_OK && ag_graph_plan(&shared, 4, &err) == AG_OK,
            "both plan at batch 4")) return;
    ok(shared.slab_floats * 2 < whole.slab_floats,
       "the reusing graph's slab is less than half of one buffer per value: %lld floats, not %lld",
       (long long)shared.slab_floats, (long long)whole.slab_floats);
    int same = 1, kept = 1;
    for (int batch = 4; batch >= 3; batch--) {
        ag_graph_set_batch(&whole, batch);
        ag_graph_set_batch(&shared, batch);
        fill(&r, wx->data, batch * 72);
        memcpy(sx->data, wx->data, (size_t)batch * 72 * sizeof(float));
        rng_seed(&r, 5);
        ag_forward(&whole, 0, whole.n);
        rng_seed(&r, 5);
        ag_forward(&shared, 0, shared.n);
        same &= !memcmp(wout->data, sout->data, (size_t)batch * 72 * sizeof(float));
        kept &= !memcmp(wmid->data, smid->data, (size_t)batch * 72 * sizeof(float));
    }
    ok(same, "... and gives the same bits as the graph with one buffer per value, at batch 4 and 3");
    ok(kept, "a kept value in the middle still holds its value after the run");
    ag_graph_free(&whole);
    ag_graph_free(&shared);
    ag_params_free(&ps);
}

/* A sample section's loop: c = f(c, z) for passes over a carried c, with z made once
 * before the loop and an image made after it from c and from a value of the loop. The
 * values the caller copies, c's first and each pass's last, die where they are made
 * but for ag_keep. */
typedef struct loop_net {
    ag_graph g;
    ag_node *init, *carry_in, *carry_out, *image;
} loop_net;

static void loop_build(loop_net *l, ag_params *ps, rng *r, int reuse)
{
    ag_graph *g = &l->g;
    ag_graph_init(g, ps, r);
    g->reuse = reuse;
    g->training = 0;
    ag_node *x = ag_input(g, "x", ag_shape2(4, 8), 0);
    l->init = ag_randn(g, ag_shape2(4, 8), 0, 0.0f, 1.0f);
    ag_node *z = ag_unary(g, AG_OP_TANH, ag_linear(g, x, ag_param(g, 0), ag_param(g, 1)));
    /* Values that die before the loop, whose buffers the loop's values take. */
    ag_node *wide = ag_reshape(g, ag_randn(g, ag_shape2(4, 64), 0, 0.0f, 1.0f), 3, (int[]){4, 8, 8});
    z = ag_binary(g, AG_OP_ADD, z, ag_mean_axis(g, wide, 2, 0));
    l->carry_in = ag_input(g, "c", ag_shape2(4, 8), 0);
    int begin = g->n;
    ag_node *a = ag_binary(g, AG_OP_ADD, l->carry_in, z);
    for (int k = 0; k < 4; k++) a = ag_unary(g, AG_OP_TANH, ag_linear(g, a, ag_param(g, 0), ag_param(g, 1)));
    l->carry_out = ag_binary(g, AG_OP_ADD, ag_affine(g, a, 0.5f, 0.0f), ag_randn_like(g, a));
    ag_node *seen = ag_binary(g, AG_OP_ADD, ag_binary(g, AG_OP_ADD, ag_affine(g, a, 2.0f, 0.0f),
                                                     ag_affine(g, a, 3.0f, 0.0f)),
                              ag_affine(g, a, 4.0f, 0.0f));
    int end = g->n;
    l->image = ag_binary(g, AG_OP_MUL, ag_unary(g, AG_OP_SIGMOID, l->carry_in), ag_unary(g, AG_OP_EXP, seen));
    if (!l->image) return;
    ag_graph_loop(g, begin, end);
    ag_keep(g, l->init);
    ag_keep(g, l->carry_out);
    ag_keep(g, l->image);
}

/* As pg_sample runs it with a strip: the image also before the first pass and after
 * every other pass. */
static void loop_run(loop_net *l, rng *r, const float *x, float *frames)
{
    ag_graph *g = &l->g;
    rng_seed(r, 3);
    memcpy(g->nodes[0]->data, x, 32 * sizeof(float));
    ag_forward(g, 0, g->loop_begin);
    memcpy(l->carry_in->data, l->init->data, 32 * sizeof(float));
    for (int pass = 0; pass <= 6; pass++) {
        if (pass % 2 == 0) {
            ag_forward(g, g->loop_end, g->n);
            memcpy(frames + (pass / 2) * 32, l->image->data, 32 * sizeof(float));
        }
        if (pass == 6) break;
        ag_forward(g, g->loop_begin, g->loop_end);
        memcpy(l->carry_in->data, l->carry_out->data, 32 * sizeof(float));
    }
}

static void test_reuse_loop(void)
{
    rng r;
    rng_seed(&r, 19);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_add(&ps, "fc.weight", ag_shape2(8, 8), no_loc);
    ag_params_add(&ps, "fc.bias", ag_shape1(8), no_loc);
    ag_params_alloc(&ps);
    fill(&r, ps.data, ps.total);
    loop_net whole, shared;
    loop_build(&whole, &ps, &r, 0);
    loop_build(&shared, &ps, &r, 1);
    ag_error err;
    if (!ok(whole.image && shared.image && ag_graph_plan(&whole.g, 1, &err) == AG_OK &&
                ag_graph_plan(&shared.g, 1, &err) == AG_OK,
            "a graph with a loop plans, with and without reuse")) return;
    ok(shared.g.slab_floats < whole.g.slab_floats, "reuse plans less: %lld floats, not %lld",
       (long long)shared.g.slab_floats, (long long)whole.g.slab_floats);
    float x[32], want[4 * 32], got[4 * 32];
    fill(&r, x, 32);
    loop_run(&whole, &r, x, want);
    loop_run(&shared, &r, x, got);
    ok(!memcmp(want, got, sizeof want),
       "the image before the passes, between them and after: the same bits as one buffer per value");
    ag_graph_free(&whole.g);
    ag_graph_free(&shared.g);
    ag_params_free(&ps);
}

/* ---- grads are zeroed at each backward ------------------------------------------ */

static void test_backward_zeroes(void)
{
    rng r;
    rng_seed(&r, 5);
    ag_params ps;
    ag_params_init(&ps);
    int w = ag_params_add(&ps, "w", ag_shape2(3, 4), no_loc);
    ag_params_alloc(&ps);
    fill(&r, ps.data, ps.total);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", ag_shape2(0, 4), 1);
    ag_node *loss = ag_mean(&g, ag_unary(&g, AG_OP_TANH, ag_linear(&g, x, ag_param(&g, w), NULL)));
    ag_error err;
    ag_bwplan *bw = ag_backward_plan(&g, loss, &w, 1, &err);
    ag_graph_plan(&g, 2, &err);
    fill(&r, x->data, 8);
    ag_forward(&g, 0, g.n);
    ag_backward(&g, bw);
    float first[12];
    memcpy(first, ps.p[w].grad, sizeof first);
    ag_backward(&g, bw);
    ok(any_nonzero(first, 12) && memcmp(first, ps.p[w].grad, sizeof first) == 0,
       "two backward calls give the same grads, not doubled");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* ---- gradients shared by lifetime ------------------------------------------------ */

/* Two losses over one net with branches, planned with and without g->reuse:
 *   h = linear(x, W1, b1), read by four consumers: tanh (which starts a branch,
 *       c = linear(tanh(h), W2)), mul(h, c), a reshape and a second tanh;
 *   c's linear: its sgemms would read their own output's grad if a step's sources
 *       took that buffer;
 *   e = mul(h, c) + reshape(h) + tanh(h): h's grad is first written through its alias,
 *       then added to by the three others; zeroed at that first write, it must live
 *       across c's branch until h's own step;
 *   loss = mean(sigmoid(e)), loss2 = sum(c * c) over W2 alone: a second pass with a
 *       layout of its own over some of the same nodes. */
typedef struct branch_net {
    ag_graph g;
    ag_node *x, *h, *c, *flat, *t, *e;
    ag_bwplan *bw, *bw2;
} branch_net;

enum { BW1, BB1, BW2 };

static int branch_build(branch_net *b, ag_params *ps, rng *r, int reuse)
{
    ag_graph *g = &b->g;
    ag_graph_init(g, ps, r);
    g->reuse = reuse;
    b->x = ag_input(g, "x", ag_shape2(0, 3), 1);
    b->h = ag_linear(g, b->x, ag_param(g, BW1), ag_param(g, BB1));
    b->c = ag_linear(g, ag_unary(g, AG_OP_TANH, b->h), ag_param(g, BW2), NULL);
    b->flat = ag_reshape(g, b->h, 2, (int[]){-1, 4});
    b->t = ag_unary(g, AG_OP_TANH, b->h);
    b->e = ag_binary(g, AG_OP_ADD, ag_binary(g, AG_OP_ADD, ag_binary(g, AG_OP_MUL, b->h, b->c), b->flat), b->t);
    ag_node *loss = ag_mean(g, ag_unary(g, AG_OP_SIGMOID, b->e));
    ag_node *loss2 = ag_sum(g, ag_binary(g, AG_OP_MUL, b->c, b->c));
    ag_error err;
    if (!loss || !loss2) return AG_ERR;
    b->bw = ag_backward_plan(g, loss, (int[]){BW1, BB1, BW2}, 3, &err);
    b->bw2 = ag_backward_plan(g, loss2, (int[]){BW2}, 1, &err);
    if (!b->bw || !b->bw2) return AG_ERR;
    return ag_graph_plan(g, 8, &err);
}

/* The parameters' gradients of pass bw (then of bw2, then of bw again: each pass points
 * the grads at its own layout) into out[3][ps->total]. */
static void branch_run(branch_net *b, ag_params *ps, const float *x, float *out)
{
    ag_graph_set_batch(&b->g, 8);
    memcpy(b->x->data, x, 8 * 3 * sizeof(float));
    ag_forward(&b->g, 0, b->g.n);
    const ag_bwplan *order[3] = {b->bw, b->bw2, b->bw};
    for (int k = 0; k < 3; k++) {
        memset(ps->grad, 0, (size_t)ps->total * sizeof(float));
        ag_backward(&b->g, order[k]);
        memcpy(out + k * ps->total, ps->grad, (size_t)ps->total * sizeof(float));
    }
}

/* The buffer of n's grad in pass p, and whether another node's (not an alias) is the
 * same one. */
static int64_t grad_at(const ag_bwplan *p, const ag_node *n)
{
    for (int k = 0; k < p->ngrads; k++)
        if (p->grads[k] == n) return p->grad_at[k];
    return -1;
}

static int grad_buffer_reused(const ag_bwplan *p, const ag_node *n)
{
    for (int k = 0; k < p->ngrads; k++)
        if (p->grads[k] != n && p->grad_at[k] == grad_at(p, n) &&
            !(p->grads[k]->op == AG_OP_RESHAPE && p->grads[k]->src[0] == n))
            return 1;
    return 0;
}

static void test_shared_grads(void)
{
    rng r;
    rng_seed(&r, 23);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_add(&ps, "W1", ag_shape2(4, 3), no_loc);
    ag_params_add(&ps, "b1", ag_shape1(4), no_loc);
    ag_params_add(&ps, "W2", ag_shape2(4, 4), no_loc);
    ag_params_alloc(&ps);
    fill(&r, ps.data, ps.total);
    branch_net whole, shared;
    if (!ok(branch_build(&whole, &ps, &r, 0) == AG_OK && branch_build(&shared, &ps, &r, 1) == AG_OK,
            "the branching net plans with and without reuse")) {
        diag("%s %s", whole.g.err.msg, shared.g.err.msg);
        return;
    }
    const ag_bwplan *p = shared.bw;
    ok(shared.g.slab_floats < whole.g.slab_floats, "shared gradients plan less: %lld floats, not %lld",
       (long long)shared.g.slab_floats, (long long)whole.g.slab_floats);
    ok(p->grad_floats < 6 * 8 * 4 + 4 * 16, "the pass holds fewer than its six [8, 4] grads at once (%lld floats)",
       (long long)p->grad_floats);
    /* The cases the rules are for: buffers that held another grad earlier in the pass,
     * one added to first (zeroed at that step, not at the pass's start, when it still
     * held the other), one written first (an assigning op, tanh's input in c's linear);
     * h, written first through its alias and added to by three more consumers. */
    int zeroed_reused = 0, h_zeroed = 0;
    for (int k = 0; k < p->nzero; k++) {
        zeroed_reused |= p->zero[k]->op != AG_OP_PARAM && grad_buffer_reused(p, p->zero[k]);
        h_zeroed += p->zero[k] == shared.h;
    }
    ok(zeroed_reused, "a grad that a step adds to first takes a buffer another grad held");
    ok(grad_buffer_reused(p, shared.c->src[0]) && (assign_of(p, shared.c) & 1u),
       "tanh's grad takes a buffer another grad held, and c's linear writes it outright");
    ok(h_zeroed == 1, "h's grad is zeroed once, for its alias and itself");
    ok(grad_at(p, shared.h) == grad_at(p, shared.flat), "the reshape's grad is h's");
    ok(grad_at(shared.bw2, shared.c) >= 0 && grad_at(shared.bw2, shared.c) != grad_at(p, shared.c),
       "the second pass lays out c's grad on its own");
    int disjoint = 1;
    for (int k = 0; k < p->nsteps; k++) {
        const ag_node *n = p->steps[k].node;
        for (int s = 0; s < n->nsrc; s++)
            if ((p->steps[k].need >> s & 1u) && n->src[s]->op != AG_OP_PARAM &&
                grad_at(p, n->src[s]) == grad_at(p, n) && n->op != AG_OP_RESHAPE)
                disjoint = 0;
    }
    ok(disjoint, "no step's source grad is its own grad's buffer");

    float x[24], *want = ag_xmalloc((size_t)ps.total * 3 * sizeof(float)),
                 *got = ag_xmalloc((size_t)ps.total * 3 * sizeof(float));
    fill(&r, x, 24);
    branch_run(&whole, &ps, x, want);
    branch_run(&shared, &ps, x, got);
    ok(any_nonzero(want, ps.total) && !memcmp(want, got, (size_t)ps.total * sizeof(float)),
       "shared gradient buffers give the same bits as one buffer per gradient");
    ok(!memcmp(want + ps.total, got + ps.total, 2 * (size_t)ps.total * sizeof(float)),
       "... for the second pass, and the first again after it");
    ag_graph_set_batch(&shared.g, 5);
    ag_graph_set_batch(&whole.g, 5);
    ag_forward(&whole.g, 0, whole.g.n);
    ag_forward(&shared.g, 0, shared.g.n);
    ag_backward(&whole.g, whole.bw);
    memcpy(want, ps.grad, (size_t)ps.total * sizeof(float));
    ag_backward(&shared.g, shared.bw);
    ok(!memcmp(want, ps.grad, (size_t)ps.total * sizeof(float)), "... and at a smaller batch");
    free(want);
    free(got);
    ag_graph_free(&whole.g);
    ag_graph_free(&shared.g);
    ag_params_free(&ps);
}

/* ---- errors --------------------------------------------------------------------- */

static void test_errors(void)
{
    rng r;
    rng_seed(&r, 1);
    ag_params ps;
    ag_params_init(&ps);
    int w = ag_params_add(&ps, "w", ag_shape2(1, 4), no_loc);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_error err;

    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 3, 5});
    ag_node *x = ag_input(&g, "x", ag_shape2(0, 4), 1);
    ag_node *y = ag_linear(&g, x, ag_param(&g, w), NULL);
    ok(ag_backward_plan(&g, y, &w, 1, &err) == NULL, "a batched loss has no plan");
    is_str(err.msg, "spec.yaml:3:5: a loss must be a single number, this one has shape [B, 1]",
           "non-scalar loss: message");

    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 9, 2});
    ag_node *v = ag_sum_axis(&g, ag_full(&g, ag_shape2(2, 3), 0, 1), 0, 0);
    ok(v && ag_backward_plan(&g, v, &w, 1, &err) == NULL, "a [3] loss has no plan");
    is_str(err.msg, "spec.yaml:9:2: a loss must be a single number, this one has shape [3]",
           "non-scalar unbatched loss: message");

    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 4, 1});
    ag_node *lx = ag_mean(&g, x);
    ok(ag_backward_plan(&g, lx, &w, 1, &err) == NULL, "a loss of the data alone has no plan");
    is_str(err.msg, "spec.yaml:4:1: this loss does not depend on any of the parameters it should update",
           "loss without params: message");
    ag_node *ld = ag_mean(&g, ag_detach(&g, y));
    ok(ag_backward_plan(&g, ld, &w, 1, &err) == NULL, "a loss reaching the params only through detach has no plan");
    is_str(err.msg, "spec.yaml:4:1: this loss does not depend on any of the parameters it should update",
           "loss through detach: message");

    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 3, 5});
    ag_node *bad = ag_linear(&g, ag_input(&g, "h", ag_shape2(0, 5), 1), ag_param(&g, w), NULL);
    ok(bad == NULL, "linear with 5 features into a weight for 4 fails");
    is_str(g.err.msg, "spec.yaml:3:5: linear: input has 5 features but the weight expects 4",
           "linear shape error: message with the node's place");
    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 12, 7});
    ag_node *sum = ag_binary(&g, AG_OP_ADD, x, ag_full(&g, ag_shape2(64, 4), 0, 0));
    ok(sum == NULL, "a batched [B, 4] plus a fixed [64, 4] fails");
    is_str(g.err.msg, "spec.yaml:12:7: add: shapes [B, 4] and [64, 4] do not broadcast",
           "broadcast error: message");
    ok(ag_unary(&g, AG_OP_TANH, sum) == NULL && strcmp(g.err.msg, "spec.yaml:12:7: add: shapes [B, 4] and [64, 4] do not broadcast") == 0,
       "a NULL source passes through and keeps the first message");
    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 2, 1});
    ag_node *rs = ag_reshape(&g, x, 2, (const int[]){-1, 3});
    ok(rs == NULL, "reshape of [B, 4] to [-1, 3] fails");
    is_str(g.err.msg, "spec.yaml:2:1: reshape: cannot reshape [B, 4] to [-1, 3]: a sample has 4 values, not 3",
           "reshape error: message");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* ---- determinism ---------------------------------------------------------------- */

static void draw(uint64_t seed, float *out1, float *out2)
{
    rng r;
    rng_seed(&r, seed);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *a = ag_randn(&g, ag_shape2(5, 7), 0, 0, 1);
    ag_node *b = ag_randn(&g, ag_shape2(0, 3), 1, 2, 0.5f);
    ag_error err;
    ag_graph_plan(&g, 4, &err);
    ag_forward(&g, 0, g.n);
    memcpy(out1, a->data, 35 * sizeof(float));
    memcpy(out1 + 35, b->data, 12 * sizeof(float));
    ag_forward(&g, 0, g.n);
    memcpy(out2, a->data, 35 * sizeof(float));
    memcpy(out2 + 35, b->data, 12 * sizeof(float));
    ag_graph_free(&g);
    ag_params_free(&ps);
}

static void test_determinism(void)
{
    float a1[47], a2[47], b1[47], b2[47], c1[47], c2[47];
    draw(123, a1, a2);
    draw(123, b1, b2);
    draw(124, c1, c2);
    ok(memcmp(a1, b1, sizeof a1) == 0 && memcmp(a2, b2, sizeof a2) == 0,
       "two graphs seeded alike draw bit-identical randn values, forward after forward");
    ok(memcmp(a1, a2, sizeof a1) != 0, "each forward draws fresh values");
    ok(memcmp(a1, c1, sizeof a1) != 0, "another seed draws other values");
}

/* ---- index ops ------------------------------------------------------------------ */

static void test_index_ops(void)
{
    rng r;
    rng_seed(&r, 1);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 7, 2});
    ag_node *idx = ag_input(&g, "labels", ag_shape1(0), 1);
    ag_node *oh = ag_one_hot(&g, idx, 3);
    ag_node *cyc = ag_cycle(&g, 7, 3);
    ag_node *bs = ag_batch_size(&g);
    ag_error err;
    if (!ok(oh && cyc && bs && ag_graph_plan(&g, 8, &err) == AG_OK, "one_hot, cycle, batch_size build")) return;
    ok(oh->batched && oh->shape.ndim == 2 && oh->shape.d[1] == 3, "one_hot of [B] is [B, 3]");

    ag_graph_set_batch(&g, 4);
    memcpy(idx->data, (float[]){0, 2, 1, 2}, 4 * sizeof(float));
    ok(ag_forward(&g, 0, g.n) == AG_OK, "forward runs");
    const float want_oh[] = {1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1};
    ok(memcmp(oh->data, want_oh, sizeof want_oh) == 0, "one_hot([0, 2, 1, 2], 3)");
    const float want_cyc[] = {0, 1, 2, 0, 1, 2, 0};
    ok(memcmp(cyc->data, want_cyc, sizeof want_cyc) == 0, "cycle(7, 3) = 0 1 2 0 1 2 0");
    ok(bs->data[0] == 4.0f, "batch_size is 4 at batch 4");
    ag_graph_set_batch(&g, 8);
    ag_forward(&g, 0, g.n);
    ok(bs->data[0] == 8.0f, "batch_size follows ag_graph_set_batch to 8");
    ag_graph_set_batch(&g, 1);
    ag_forward(&g, 0, g.n);
    ok(bs->data[0] == 1.0f, "and down to 1");

    const struct {
        float v;
        const char *msg;
    } bad[] = {
        {3, "spec.yaml:7:2: one_hot: index 3 is not a class in [0, 3)"},
        {-1, "spec.yaml:7:2: one_hot: index -1 is not a class in [0, 3)"},
        {1.5f, "spec.yaml:7:2: one_hot: index 1.5 is not a class in [0, 3)"},
    };
    for (size_t k = 0; k < AG_COUNTOF(bad); k++) {
        g.failed = 0;
        ag_graph_set_batch(&g, 2);
        idx->data[0] = 0;
        idx->data[1] = bad[k].v;
        ok(ag_forward(&g, 0, g.n) == AG_ERR && g.failed, "one_hot of %g fails", bad[k].v);
        is_str(g.err.msg, bad[k].msg, "one_hot of %g: message", bad[k].v);
    }
    ag_graph_free(&g);

    ag_graph_init(&g, &ps, &r);
    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 8, 3});
    ok(ag_cycle(&g, 4, 0) == NULL, "cycle with period 0 fails");
    is_str(g.err.msg, "spec.yaml:8:3: cycle: the period must be at least 1, got 0", "cycle period: message");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* ---- aliasing ------------------------------------------------------------------- */

static void test_aliasing(void)
{
    rng r;
    rng_seed(&r, 9);
    ag_params ps;
    ag_params_init(&ps);
    int w = ag_params_add(&ps, "w", ag_shape2(2, 3), no_loc);
    ag_params_alloc(&ps);
    fill(&r, ps.data, ps.total);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", ag_shape3(0, 2, 3), 1);
    ag_node *flat = ag_flatten(&g, x);
    ag_node *det = ag_detach(&g, x);
    ag_node *wr = ag_reshape(&g, ag_param(&g, w), 1, (const int[]){-1});
    ag_node *c = ag_input(&g, "c", ag_shape1(6), 0);
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, wr, c));
    ag_error err;
    ag_bwplan *bw = ag_backward_plan(&g, loss, &w, 1, &err);
    ok(bw && ag_graph_plan(&g, 4, &err) == AG_OK, "plans");
    ok(flat->data == x->data && det->data == x->data, "flatten and detach share their source's data");
    ok(wr->data == ps.p[w].data && wr->grad == ps.p[w].grad, "a reshaped parameter shares its data and grad");
    ok(flat->shape.ndim == 2 && flat->shape.d[1] == 6, "flatten of [B, 2, 3] is [B, 6]");

    ag_graph_set_batch(&g, 2);
    fill(&r, x->data, 12);
    for (int k = 0; k < 6; k++) c->data[k] = (float)(k + 1);
    ag_forward(&g, 0, g.n);
    ok(flat->data[7] == x->data[7] && det->data[11] == x->data[11], "values seen through the aliases");
    ag_backward(&g, bw);
    int good = 1;
    for (int k = 0; k < 6; k++) good &= ps.p[w].grad[k] == (float)(k + 1);
    ok(good, "the gradient through a reshape lands in the parameter");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* interpolate: rows walk from a to b; the gradient splits between the ends. */
static ag_node *build_interpolate(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_interpolate(g, in[0], in[1], *(int *)ctx);
}

static void test_interpolate(void)
{
    gc_input ends[2] = {{ag_shape2(3, 4), -1, 1, 0, 0}, {ag_shape2(3, 4), -1, 1, 0, 0}};
    int steps = 5;
    gc_check("interpolate [3, 4] in 5 steps", 2, ends, build_interpolate, &steps);
    gc_input images[2] = {{ag_shape4(2, 1, 3, 3), -2, 2, 0, 0}, {ag_shape4(2, 1, 3, 3), -2, 2, 0, 0}};
    steps = 2;
    gc_check("interpolate [2, 1, 3, 3] in 2 steps", 2, images, build_interpolate, &steps);

    rng r;
    rng_seed(&r, 3);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *a = ag_input(&g, "a", ag_shape2(1, 2), 0), *b = ag_input(&g, "b", ag_shape2(1, 2), 0);
    ag_node *y = ag_interpolate(&g, a, b, 3);
    ag_error err;
    ok(y && ag_graph_plan(&g, 1, &err) == AG_OK, "interpolate builds");
    a->data[0] = 0, a->data[1] = 4, b->data[0] = 2, b->data[1] = 0;
    ag_forward(&g, 0, g.n);
    const float want[6] = {0, 4, 1, 2, 2, 0};
    int same = 1;
    for (int k = 0; k < 6; k++) same &= y->data[k] == want[k];
    ok(same, "interpolate's rows: a, the midpoint, b");
    ag_graph_free(&g);
    ag_graph_init(&g, &ps, &r);
    a = ag_input(&g, "a", ag_shape2(1, 2), 0), b = ag_input(&g, "b", ag_shape2(1, 2), 0);
    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 2, 9});
    ok(!ag_interpolate(&g, a, b, 1), "one step is refused");
    is_str(g.err.msg, "spec.yaml:2:9: interpolate: give at least 2 steps, got 1", "one step: message");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* randint draws whole numbers in [0, high), all of them; at() looks a table up per
 * sample, with a default outside it, shaped to broadcast against images. */
static void test_schedule_ops(void)
{
    rng r;
    rng_seed(&r, 9);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *ix = ag_randint(&g, ag_shape1(1), 1, 5);
    ag_node *table = ag_input(&g, "table", ag_shape1(5), 0);
    ag_node *at = ag_table_at(&g, table, ix, -1.0f, 4);
    ag_error err;
    ok(at && ag_graph_plan(&g, 4000, &err) == AG_OK, "randint and table_at build");
    ok(at->shape.ndim == 4 && at->shape.d[1] == 1 && at->shape.d[3] == 1 && at->batched,
       "table_at shapes [B] to [B, 1, 1, 1]");
    for (int k = 0; k < 5; k++) table->data[k] = 10.0f * k;
    ag_forward(&g, 0, g.n);
    int counts[5] = {0}, whole = 1, looked_up = 1;
    for (int k = 0; k < 4000; k++) {
        float v = ix->data[k];
        whole &= v == floorf(v) && v >= 0 && v < 5;
        if (whole) counts[(int)v]++;
        looked_up &= at->data[k] == 10.0f * v;
    }
    ok(whole, "randint gives whole numbers in [0, 5)");
    int even = 1;
    for (int k = 0; k < 5; k++) even &= counts[k] > 700 && counts[k] < 900;
    ok(even, "each of the 5 values comes about 800 times in 4000 (%d %d %d %d %d)", counts[0], counts[1],
       counts[2], counts[3], counts[4]);
    ok(looked_up, "table_at reads table[index]");
    ag_graph_free(&g);

    ag_graph_init(&g, &ps, &r);
    ag_node *idx = ag_input(&g, "t", ag_shape1(3), 0);
    table = ag_input(&g, "table", ag_shape1(2), 0);
    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 4, 7});
    at = ag_table_at(&g, table, idx, 1.0f, 0);
    ok(at && ag_graph_plan(&g, 1, &err) == AG_OK && at->shape.ndim == 1, "table_at keeps the index's shape");
    table->data[0] = 0.5f, table->data[1] = 0.25f;
    idx->data[0] = -1, idx->data[1] = 1, idx->data[2] = 2;
    ok(ag_forward(&g, 0, g.n) == AG_OK && at->data[0] == 1.0f && at->data[1] == 0.25f && at->data[2] == 1.0f,
       "an index outside the table gives the default");
    idx->data[1] = 0.5f;
    ok(ag_forward(&g, 0, g.n) == AG_ERR, "a fractional index fails");
    is_str(g.err.msg, "spec.yaml:4:7: at: index 0.5 is not a whole number", "fractional index: message");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* threshold binarizes; bernoulli draws 1 with probability p, and refuses a p outside
 * [0, 1] with its place. */
static void test_bits(void)
{
    rng r;
    rng_seed(&r, 11);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", ag_shape1(4), 0);
    ag_node *bits = ag_threshold(&g, x, 127.0f);
    ag_node *p = ag_input(&g, "p", ag_shape1(10000), 0);
    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 8, 3});
    ag_node *draw = ag_bernoulli(&g, p);
    ag_error err;
    ok(bits && draw && ag_graph_plan(&g, 1, &err) == AG_OK, "threshold and bernoulli build");
    x->data[0] = 0, x->data[1] = 127, x->data[2] = 128, x->data[3] = 255;
    for (int k = 0; k < 10000; k++) p->data[k] = k < 5000 ? 0.25f : (k < 7500 ? 0.0f : 1.0f);
    ok(ag_forward(&g, 0, g.n) == AG_OK, "they run");
    ok(bits->data[0] == 0 && bits->data[1] == 0 && bits->data[2] == 1 && bits->data[3] == 1,
       "threshold: 1 above the level, 0 at or below it");
    int ones = 0, exact = 1;
    for (int k = 0; k < 5000; k++) ones += draw->data[k] == 1.0f;
    for (int k = 5000; k < 10000; k++) exact &= draw->data[k] == (k < 7500 ? 0.0f : 1.0f);
    /* 5000 draws at p = 1/4: 1250 expected, standard deviation about 31. */
    ok(ones > 1100 && ones < 1400, "bernoulli(0.25) gives about a quarter ones (%d of 5000)", ones);
    ok(exact, "bernoulli(0) is 0 and bernoulli(1) is 1");
    p->data[3] = 1.5f;
    ok(ag_forward(&g, 0, g.n) == AG_ERR, "a probability above 1 fails");
    is_str(g.err.msg, "spec.yaml:8:3: bernoulli: probability 1.5 at element 3 is outside [0, 1]",
           "bernoulli: message");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

int main(void)
{
    test_gan_plans();
    test_shared_param();
    test_dynamic_batch();
    test_copy();
    test_reuse();
    test_reuse_loop();
    test_backward_zeroes();
    test_shared_grads();
    test_errors();
    test_determinism();
    test_index_ops();
    test_aliasing();
    test_interpolate();
    test_schedule_ops();
    test_bits();
    return tap_done();
}
