/* test_ops_nn.c — leaves, matmul, linear, the losses and dropout: finite-difference
 * gradients for every case, then the values and messages a user relies on. */
#include "aigc/graph.h"
#include "gradcheck.h"
#include "fixture.h"
#include "tap.h"

static void set(ag_node *n, const float *v)
{
    memcpy(n->data, v, (size_t)ag_numel(&n->shape) * sizeof *v);
}

/* Mean and standard deviation, in double. */
static void stats(const float *x, int64_t n, double *mean, double *std)
{
    double s = 0, ss = 0;
    for (int64_t k = 0; k < n; k++) s += x[k];
    *mean = s / (double)n;
    for (int64_t k = 0; k < n; k++) ss += (x[k] - *mean) * (x[k] - *mean);
    *std = sqrt(ss / (double)n);
}

/* ------------------------------------------------------------- gradients -- */

typedef struct mm_ctx {
    int ta, tb;
} mm_ctx;

static ag_node *build_matmul(ag_graph *g, ag_node **in, void *ctx)
{
    const mm_ctx *c = ctx;
    return ag_matmul(g, in[0], in[1], c->ta, c->tb);
}

/* Shapes of op(A) = [.., m, k] and op(B) = [k, n] stored as the transpose flags say. */
static void grad_matmul(const char *what, int lead_a, int lead_b, int ta, int tb)
{
    int m = 3, k = 4, n = 5;
    int lead[2] = {2, 3};
    ag_shape a = {lead_a + 2, {0}}, b = {lead_b + 2, {0}};
    for (int j = 0; j < lead_a; j++) a.d[j] = lead[j];
    for (int j = 0; j < lead_b; j++) b.d[j] = lead[j];
    a.d[lead_a] = ta ? k : m;
    a.d[lead_a + 1] = ta ? m : k;
    b.d[lead_b] = tb ? n : k;
    b.d[lead_b + 1] = tb ? k : n;
    gc_input in[2] = {{a, -1, 1, 0, 0}, {b, -1, 1, 0, 0}};
    char name[96];
    snprintf(name, sizeof name, "matmul %s ta=%d tb=%d", what, ta, tb);
    gc_check(name, 2, in, build_matmul, &(mm_ctx){ta, tb});
}

static void test_grad_matmul(void)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            grad_matmul("2-D @ 2-D", 0, 0, ta, tb);
            grad_matmul("3-D @ shared 2-D", 1, 0, ta, tb);
            grad_matmul("3-D @ 3-D", 1, 1, ta, tb);
            grad_matmul("4-D @ 4-D", 2, 2, ta, tb);
        }
    grad_matmul("4-D @ shared 2-D", 2, 0, 0, 1);
}

static ag_node *build_linear(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_linear(g, in[0], in[1], ctx ? in[2] : NULL);
}

static void test_grad_linear(void)
{
    int bias = 1;
    gc_input in2[3] = {{ag_shape2(3, 5), -1, 1, 0, 0},
                       {ag_shape2(4, 5), -1, 1, 0, 0},
                       {ag_shape1(4), -1, 1, 0, 0}};
    gc_check("linear [3, 5] with bias", 3, in2, build_linear, &bias);
    gc_check("linear [3, 5] without bias", 2, in2, build_linear, NULL);
    gc_input in3[3] = {{ag_shape3(2, 3, 5), -1, 1, 0, 0},
                       {ag_shape2(4, 5), -1, 1, 0, 0},
                       {ag_shape1(4), -1, 1, 0, 0}};
    gc_check("linear [2, 3, 5] with bias", 3, in3, build_linear, &bias);
    gc_check("linear [2, 3, 5] without bias", 2, in3, build_linear, NULL);
}

/* An activation on a linear layer is run by the layer (fusion); its gradient still
 * flows through its own backward. */
static ag_node *build_linear_act(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_unary(g, *(const ag_op *)ctx, ag_linear(g, in[0], in[1], in[2]));
}

static void test_grad_linear_fused(void)
{
    static const ag_op acts[] = {AG_OP_SIGMOID, AG_OP_TANH, AG_OP_RELU, AG_OP_GELU};
    gc_input in[3] = {{ag_shape2(3, 5), -1, 1, 0, 0},
                      {ag_shape2(4, 5), -1, 1, 0, 0},
                      {ag_shape1(4), -1, 1, 0, 0}};
    for (size_t k = 0; k < AG_COUNTOF(acts); k++) {
        char name[64];
        snprintf(name, sizeof name, "linear then %s (fused)", ag_op_defs[acts[k]]->name);
        gc_check(name, 3, in, build_linear_act, (void *)&acts[k]);
    }
}

/* The same layer and activation with and without fusion (a reshape between them stops
 * it) give the same bits, when the sgemm is cut by columns (64 rows of 400) and by rows
 * (300 rows of 16), at 1 and 2 threads; a second activation of the same layer is not
 * fused and still right. */
static void check_fusion(int rows, int in, int out, int threads)
{
    ag_set_threads(threads);
    fixture f;
    fx_init(&f, 5);
    ag_node *x = ag_input(&f.g, "x", ag_shape2(rows, in), 0);
    ag_node *w = ag_input(&f.g, "w", ag_shape2(out, in), 0);
    ag_node *b = ag_input(&f.g, "b", ag_shape1(out), 0);
    ag_node *y = ag_linear(&f.g, x, w, b);
    ag_node *fused = ag_unary(&f.g, AG_OP_SIGMOID, y);
    ag_node *second = ag_unary(&f.g, AG_OP_RELU, y);
    ag_node *view = ag_reshape(&f.g, ag_linear(&f.g, x, w, b), 2, (int[]){rows, out});
    ag_node *plain = ag_unary(&f.g, AG_OP_SIGMOID, view);
    ag_node *plain2 = ag_unary(&f.g, AG_OP_RELU, view);
    if (!fx_plan(&f, plain2)) goto done;
    rng_fill_normal(&f.r, x->data, (int64_t)rows * in, 0, 1);
    rng_fill_normal(&f.r, w->data, (int64_t)out * in, 0, 0.1f);
    rng_fill_normal(&f.r, b->data, out, 0, 1);
    ag_forward(&f.g, 0, f.g.n);
    size_t bytes = (size_t)rows * out * sizeof(float);
    ok(fused->fused && y->epilogue == fused && !second->fused && !plain->fused,
       "[%d, %d] x [%d, %d]^T: the first activation of the layer is fused, no other", rows, in,
       out, in);
    ok(!memcmp(fused->data, plain->data, bytes) && !memcmp(second->data, plain2->data, bytes),
       "[%d, %d] x [%d, %d]^T at %d threads: fused and unfused give the same bits", rows, in,
       out, in, threads);
done:
    fx_free(&f);
    ag_set_threads(1);
}

/* The bias gradient is cut by columns over the pool: at 2 threads it is the column sums
 * of dy (here dy is sigmoid's derivative times 1, from sum(sigmoid(linear))). */
static void test_bias_grad_threads(void)
{
    enum { ROWS = 64, IN = 100, OUT = 784 };
    ag_set_threads(2);
    ag_params ps;
    ag_params_init(&ps);
    int iw = ag_params_add(&ps, "w", ag_shape2(OUT, IN), (ag_loc){0});
    int ib = ag_params_add(&ps, "b", ag_shape1(OUT), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 9);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", ag_shape2(ROWS, IN), 0);
    ag_node *y = ag_unary(&g, AG_OP_SIGMOID, ag_linear(&g, x, ag_param(&g, iw), ag_param(&g, ib)));
    ag_node *loss = ag_sum(&g, y);
    ag_error err = {{0}};
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, (int[]){iw, ib}, 2, &err) : NULL;
    if (ok(bw && ag_graph_plan(&g, 1, &err) == AG_OK, "the bias-gradient graph builds")) {
        rng_fill_normal(&r, x->data, ROWS * IN, 0, 1);
        rng_fill_normal(&r, ps.data, ps.total, 0, 0.1f);
        ag_forward(&g, 0, g.n);
        ag_backward(&g, bw);
        double worst = 0;
        for (int c = 0; c < OUT; c++) {
            double s = 0;
            for (int k = 0; k < ROWS; k++) {
                double v = y->data[k * OUT + c];
                s += v * (1 - v);
            }
            double d = fabs(ps.p[ib].grad[c] - s);
            if (d > worst) worst = d;
        }
        ok(worst < 1e-4, "at 2 threads the bias gradient is dy's column sums (worst %.2g)", worst);
    }
    ag_graph_free(&g);
    ag_params_free(&ps);
    ag_set_threads(1);
}

/* A layer's input and weight gradients, both wanted or dx alone: where the forward cuts
 * W's rows among the threads ([64, 400] -> 784), each chunk makes its rows of dW and its
 * share of dx, added after; where it cuts x's rows ([256, 64] -> 32), the two run side
 * by side when the thread count is even, each sgemm cut in half as many pieces as there
 * are threads, and with an odd count each is cut across all of them. At every count
 * both are dy W and dy^T x (here dy is sigmoid's derivative, from sum(sigmoid(x W^T))).
 * With x the weight itself (y = W W^T) the two write one gradient, dy W + dy^T W, and
 * are made one after the other. */
/* dW[o, i] = sum_r dy[r, o] x[r, i], dy = y (1 - y) */
static double dw_ref(const float *y, const float *x, int rows, int in, int out, int o, int i)
{
    double s = 0;
    for (int r = 0; r < rows; r++)
        s += (double)y[r * out + o] * (1 - y[r * out + o]) * x[r * in + i];
    return s;
}

/* self: x is W; dx_only: W is not asked for, only x. */
static double linear_grads(int rows, int in, int out, int self, int dx_only, int threads)
{
    ag_set_threads(threads);
    ag_params ps;
    ag_params_init(&ps);
    int iw = ag_params_add(&ps, "w", ag_shape2(out, in), (ag_loc){0});
    int ix = self ? iw : ag_params_add(&ps, "x", ag_shape2(rows, in), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 11);
    rng_fill_normal(&r, ps.data, ps.total, 0, 0.1f);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *w = ag_param(&g, iw), *x = self ? w : ag_param(&g, ix);
    ag_node *y = ag_unary(&g, AG_OP_SIGMOID, ag_linear(&g, x, w, NULL));
    ag_node *loss = ag_sum(&g, y);
    ag_error err = {{0}};
    int want[2] = {dx_only ? ix : iw, ix};
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, want, self || dx_only ? 1 : 2, &err) : NULL;
    double worst = INFINITY;
    if (bw && ag_graph_plan(&g, 1, &err) == AG_OK) {
        ag_forward(&g, 0, g.n);
        ag_backward(&g, bw);
        const float *xv = ps.p[ix].data, *wv = ps.p[iw].data;
        const float *gx = ps.p[ix].grad, *gw = ps.p[iw].grad;
        worst = 0;
        /* dx[a, i] = sum_o dy[a, o] W[o, i] (a row of x, or of W when x is W) */
        for (int a = 0; a < (self ? out : rows); a++)
            for (int i = 0; i < in; i++) {
                double e = self ? dw_ref(y->data, xv, rows, in, out, a, i) : 0;
                for (int o = 0; o < out; o++) {
                    double v = y->data[a * out + o];
                    e += v * (1 - v) * wv[o * in + i];
                }
                worst = fmax(worst, fabs(gx[a * in + i] - e));
            }
        if (!self && !dx_only)
            for (int o = 0; o < out; o++)
                for (int i = 0; i < in; i++)
                    worst = fmax(worst,
                                 fabs(gw[o * in + i] - dw_ref(y->data, xv, rows, in, out, o, i)));
    }
    ag_graph_free(&g);
    ag_params_free(&ps);
    ag_set_threads(1);
    return worst;
}

static void test_linear_grads_paired(void)
{
    for (int threads = 1; threads <= 4; threads++) {
        double worst = linear_grads(64, 400, 784, 0, 0, threads);
        ok(worst < 1e-4, "[64, 400] x [784, 400]^T at %d threads: dx and dW are dy W and "
           "dy^T x (worst %.2g)", threads, worst);
        worst = linear_grads(64, 400, 784, 0, 1, threads);
        ok(worst < 1e-4, "... dx alone: dy W (worst %.2g)", worst);
        worst = linear_grads(256, 64, 32, 0, 0, threads);
        ok(worst < 1e-4, "[256, 64] x [32, 64]^T at %d threads: dx and dW are dy W and "
           "dy^T x (worst %.2g)", threads, worst);
    }
    for (int threads = 1; threads <= 2; threads++) {
        double worst = linear_grads(64, 64, 64, 1, 0, threads);
        ok(worst < 1e-4, "W W^T at %d threads: dW is dy W + dy^T W (worst %.2g)", threads,
           worst);
    }
}

static void test_linear_fusion(void)
{
    for (int threads = 1; threads <= 2; threads++) {
        check_fusion(64, 784, 400, threads);
        check_fusion(300, 784, 16, threads);
    }
}

typedef struct loss_ctx {
    ag_op op;
    ag_reduction red;
} loss_ctx;

static ag_node *build_loss(ag_graph *g, ag_node **in, void *ctx)
{
    const loss_ctx *c = ctx;
    return ag_loss(g, c->op, in[0], in[1], c->red);
}

/* bce and bce_with_logits: the target is data, with no gradient. l1 keeps its operands
 * apart, so that no step of the difference crosses the kink at a = b. */
static void test_grad_losses(void)
{
    const struct {
        ag_op op;
        gc_input in[2];
    } cases[] = {
        {AG_OP_BCE, {{ag_shape2(3, 4), 0.2f, 0.8f, 0, 0}, {ag_shape2(3, 4), 0, 1, 0, 1}}},
        {AG_OP_BCE_LOGITS, {{ag_shape2(3, 4), -3, 3, 0, 0}, {ag_shape2(3, 4), 0, 1, 0, 1}}},
        {AG_OP_MSE, {{ag_shape2(3, 4), -1, 1, 0, 0}, {ag_shape2(3, 4), -1, 1, 0, 0}}},
        {AG_OP_L1, {{ag_shape2(3, 4), -1, 0, 0, 0}, {ag_shape2(3, 4), 0.5f, 1.5f, 0, 0}}},
        {AG_OP_CROSS_ENTROPY, {{ag_shape2(4, 5), -2, 2, 0, 0}, {ag_shape1(4), 0, 5, 1, 0}}},
        /* a sequence: logits [B, T, V] and targets [B, T] */
        {AG_OP_CROSS_ENTROPY, {{ag_shape3(2, 3, 5), -2, 2, 0, 0}, {ag_shape2(2, 3), 0, 5, 1, 0}}},
        {AG_OP_KL_NORMAL, {{ag_shape2(3, 4), -1, 1, 0, 0}, {ag_shape2(3, 4), -1, 1, 0, 0}}},
        /* hinge inside its margin (1 - t s in [0.25, 2.5]), then past it (flat), away
         * from the kink at t s = 1 */
        {AG_OP_HINGE, {{ag_shape2(3, 4), -1.5f, 0.5f, 0, 0}, {ag_shape2(3, 4), 0.5f, 1, 0, 0}}},
        {AG_OP_HINGE, {{ag_shape2(3, 4), 0.5f, 1.5f, 0, 0}, {ag_shape2(3, 4), -1, -0.5f, 0, 0}}},
        {AG_OP_HINGE, {{ag_shape2(3, 4), 2.5f, 3.5f, 0, 0}, {ag_shape2(3, 4), 0.6f, 1, 0, 0}}},
        {AG_OP_WASSERSTEIN, {{ag_shape2(3, 4), -2, 2, 0, 0}, {ag_shape2(3, 4), -1, 1, 0, 0}}},
    };
    const char *reds[] = {"mean", "sum", "none"};
    for (size_t k = 0; k < AG_COUNTOF(cases); k++)
        for (int red = AG_RED_MEAN; red <= AG_RED_NONE; red++) {
            char name[96];
            snprintf(name, sizeof name, "%s (%s)", ag_op_defs[cases[k].op]->name, reds[red]);
            gc_check(name, 2, cases[k].in, build_loss, &(loss_ctx){cases[k].op, red});
        }
}

typedef struct dropout_ctx {
    float p;
    int training;
} dropout_ctx;

static ag_node *build_dropout(ag_graph *g, ag_node **in, void *ctx)
{
    const dropout_ctx *c = ctx;
    g->training = c->training;
    return ag_dropout(g, in[0], c->p);
}

static void test_grad_dropout(void)
{
    gc_input in[1] = {{ag_shape2(6, 7), -1, 1, 0, 0}};
    gc_check("dropout p=0.3 (training)", 1, in, build_dropout, &(dropout_ctx){0.3f, 1});
    gc_check("dropout p=0.3 (evaluation)", 1, in, build_dropout, &(dropout_ctx){0.3f, 0});
}

/* x * detach(x): the detached factor is a constant, so the gradient is x, not 2x. */
static void test_detach(void)
{
    rng r;
    rng_seed(&r, 3);
    ag_params ps;
    ag_params_init(&ps);
    int px = ag_params_add(&ps, "x", ag_shape1(5), (ag_loc){0});
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_param(&g, px), *d = ag_detach(&g, x);
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, x, d));
    ag_error err;
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, &px, 1, &err) : NULL;
    if (!bw || ag_graph_plan(&g, 1, &err) != AG_OK) {
        ok(0, "detach graph plans: %s", loss ? err.msg : g.err.msg);
    } else {
        const float v[5] = {-2, -0.5f, 0, 1, 3};
        set(x, v);
        ag_forward(&g, 0, g.n);
        ag_backward(&g, bw);
        int same = 1, grad_is_x = 1;
        for (int k = 0; k < 5; k++) {
            same &= d->data[k] == v[k];
            grad_is_x &= x->grad[k] == v[k];
        }
        ok(same, "detach(x) has x's values");
        ok(grad_is_x, "d/dx sum(x * detach(x)) = x: nothing flows through detach");
        ok(d->grad == NULL, "detach gets no gradient buffer");
    }
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* The bce target is data: even as a parameter, it receives nothing. */
static void test_bce_target_gets_no_gradient(void)
{
    rng r;
    rng_seed(&r, 3);
    ag_params ps;
    ag_params_init(&ps);
    int pp = ag_params_add(&ps, "p", ag_shape1(4), (ag_loc){0});
    int pt = ag_params_add(&ps, "t", ag_shape1(4), (ag_loc){0});
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *p = ag_param(&g, pp), *t = ag_param(&g, pt);
    ag_node *l1 = ag_loss(&g, AG_OP_BCE, p, t, AG_RED_SUM);
    ag_node *l2 = ag_loss(&g, AG_OP_BCE_LOGITS, p, t, AG_RED_SUM);
    ag_node *loss = ag_binary(&g, AG_OP_ADD, l1, l2);
    ag_error err;
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, (int[]){pp, pt}, 2, &err) : NULL;
    if (!bw || ag_graph_plan(&g, 1, &err) != AG_OK) {
        ok(0, "bce graph plans: %s", loss ? err.msg : g.err.msg);
    } else {
        set(p, (const float[]){0.2f, 0.4f, 0.6f, 0.8f});
        set(t, (const float[]){0, 0.5f, 1, 0.25f});
        ag_forward(&g, 0, g.n);
        ag_backward(&g, bw);
        int zero = 1, nonzero = 1;
        for (int k = 0; k < 4; k++) {
            zero &= t->grad[k] == 0;
            nonzero &= p->grad[k] != 0;
        }
        ok(zero && nonzero, "bce and bce_with_logits give the input a gradient, the target none");
    }
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* ---------------------------------------------------------------- leaves -- */

static void test_random_leaves(void)
{
    fixture f;
    fx_init(&f, 42);
    ag_node *x = ag_input(&f.g, "x", ag_shape2(1000, 100), 0);
    ag_node *full = ag_full_like(&f.g, x, 2.5f);
    ag_node *zn = ag_randn_like(&f.g, x), *zu = ag_rand_like(&f.g, x);
    ag_node *n = ag_randn(&f.g, ag_shape2(1000, 100), 0, 2, 3);
    ag_node *u = ag_rand(&f.g, ag_shape2(1000, 100), 0, -1, 3);
    if (fx_plan(&f, u) && full && zn && zu && n) {
        int64_t len = 100000;
        ag_forward(&f.g, 0, f.g.n);
        int all = 1;
        for (int64_t k = 0; k < len; k++) all &= full->data[k] == 2.5f;
        ok(all && ag_shape_eq(&full->shape, &x->shape), "full_like fills x's shape with 2.5");
        double mean, std;
        stats(zn->data, len, &mean, &std);
        is_close(mean, 0, 0.02, 0, "randn_like: mean 0");
        is_close(std, 1, 0.02, 0, "randn_like: std 1");
        stats(n->data, len, &mean, &std);
        is_close(mean, 2, 0.05, 0, "randn(2, 3): mean 2");
        is_close(std, 3, 0.05, 0, "randn(2, 3): std 3");
        stats(zu->data, len, &mean, &std);
        is_close(mean, 0.5, 0.01, 0, "rand_like: mean 1/2");
        is_close(std, sqrt(1.0 / 12), 0.01, 0, "rand_like: std 1/sqrt(12)");
        int in_range = 1;
        for (int64_t k = 0; k < len; k++) in_range &= u->data[k] >= -1 && u->data[k] < 3;
        stats(u->data, len, &mean, &std);
        ok(in_range, "rand(-1, 3) stays in [-1, 3)");
        is_close(mean, 1, 0.02, 0, "rand(-1, 3): mean 1");
        float first = zn->data[0];
        ag_forward(&f.g, 0, f.g.n);
        ok(zn->data[0] != first, "random leaves draw again at every forward");
    }
    fx_free(&f);
}

/* The same seed, the same draws. */
static void test_random_leaves_repeat(void)
{
    float got[2][8];
    for (int run = 0; run < 2; run++) {
        fixture f;
        fx_init(&f, 9);
        ag_node *z = ag_randn(&f.g, ag_shape1(8), 0, 0, 1);
        if (fx_plan(&f, z)) {
            ag_forward(&f.g, 0, f.g.n);
            memcpy(got[run], z->data, sizeof got[run]);
        }
        fx_free(&f);
    }
    ok(memcmp(got[0], got[1], sizeof got[0]) == 0, "randn repeats under the same seed");
}

/* --------------------------------------------------------------- dropout -- */

static void test_dropout_behaviour(void)
{
    fixture f;
    fx_init(&f, 17);
    ag_node *x = ag_full(&f.g, ag_shape2(200, 500), 0, 1.0f);
    ag_node *y = ag_dropout(&f.g, x, 0.3f);
    if (fx_plan(&f, y)) {
        int64_t len = 100000, zeros = 0, scaled = 0;
        ag_forward(&f.g, 0, f.g.n);
        for (int64_t k = 0; k < len; k++) {
            zeros += y->data[k] == 0;
            scaled += fabsf(y->data[k] - 1 / 0.7f) < 1e-6f;
        }
        is_close((double)zeros / len, 0.3, 0.01, 0, "training: about p of the elements are zeroed");
        ok(zeros + scaled == len, "training: the rest are scaled by 1 / (1 - p)");
        f.g.training = 0;
        ag_forward(&f.g, 0, f.g.n);
        int same = 1;
        for (int64_t k = 0; k < len; k++) same &= y->data[k] == 1.0f;
        ok(same, "evaluation: dropout is the identity");
    }
    fx_free(&f);
}

/* ---------------------------------------------------------------- losses -- */

/* A forward-only loss on given values. */
static float loss_value(ag_op op, ag_reduction red, ag_shape sa, const float *a,
                        ag_shape sb, const float *b, float *each)
{
    fixture f;
    fx_init(&f, 1);
    ag_node *na = ag_input(&f.g, "a", sa, 0), *nb = ag_input(&f.g, "b", sb, 0);
    ag_node *l = ag_loss(&f.g, op, na, nb, red);
    float v = NAN;
    if (fx_plan(&f, l)) {
        set(na, a);
        set(nb, b);
        if (ag_forward(&f.g, 0, f.g.n) != AG_OK)
            diag("forward failed: %s", f.g.err.msg);
        else if (each)
            memcpy(each, l->data, (size_t)ag_numel(&l->shape) * sizeof *each);
        else
            v = l->data[0];
    }
    fx_free(&f);
    return v;
}

static void test_loss_values(void)
{
    /* PyTorch clamps each log at -100: a sure-and-wrong prediction costs 100. */
    float each[4];
    loss_value(AG_OP_BCE, AG_RED_NONE, ag_shape1(4), (const float[]){0, 1, 0, 1}, ag_shape1(4),
               (const float[]){1, 0, 0, 1}, each);
    is_close(each[0], 100, 1e-4, 0, "bce(p=0, t=1) = 100");
    is_close(each[1], 100, 1e-4, 0, "bce(p=1, t=0) = 100");
    ok(each[2] == 0 && each[3] == 0, "bce(0, 0) = bce(1, 1) = 0");
    is_close(loss_value(AG_OP_BCE, AG_RED_MEAN, ag_shape1(2), (const float[]){0.25f, 0.5f},
                        ag_shape1(2), (const float[]){1, 0.5f}, NULL),
             (-log(0.25) + log(2.0)) / 2, 1e-6, 1e-6, "bce mean of known values");

    const float x[6] = {-4, -1.5f, -0.2f, 0.3f, 2, 3.5f}, t[6] = {0, 1, 0.3f, 0.7f, 1, 0};
    float p[6], want[6], got[6];
    for (int k = 0; k < 6; k++) p[k] = 1 / (1 + expf(-x[k]));
    loss_value(AG_OP_BCE, AG_RED_NONE, ag_shape1(6), p, ag_shape1(6), t, want);
    loss_value(AG_OP_BCE_LOGITS, AG_RED_NONE, ag_shape1(6), x, ag_shape1(6), t, got);
    int agree = 1;
    for (int k = 0; k < 6; k++) agree &= tap_close(got[k], want[k], 1e-5, 1e-4);
    ok(agree, "bce_with_logits(x, t) = bce(sigmoid(x), t)");
    is_close(loss_value(AG_OP_BCE_LOGITS, AG_RED_SUM, ag_shape1(2), (const float[]){-200, 200},
                        ag_shape1(2), (const float[]){0, 1}, NULL),
             0, 1e-12, 0, "bce_with_logits saturates without overflow");

    /* Rows: log(e + e^2 + e^3) - 3 and log 3. */
    const float logits[6] = {1, 2, 3, 0, 0, 0}, cls[2] = {2, 1};
    double ce0 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3, ce1 = log(3.0);
    is_close(loss_value(AG_OP_CROSS_ENTROPY, AG_RED_MEAN, ag_shape2(2, 3), logits, ag_shape1(2),
                        cls, NULL), (ce0 + ce1) / 2, 1e-6, 1e-6, "cross_entropy mean over rows");
    is_close(loss_value(AG_OP_CROSS_ENTROPY, AG_RED_SUM, ag_shape2(2, 3), logits, ag_shape1(2),
                        cls, NULL), ce0 + ce1, 1e-6, 1e-6, "cross_entropy sum");

    const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    ok(loss_value(AG_OP_KL_NORMAL, AG_RED_SUM, ag_shape1(3), zero, ag_shape1(3), zero, NULL) == 0,
       "kl_normal(0, 0) = 0");
    is_close(loss_value(AG_OP_KL_NORMAL, AG_RED_SUM, ag_shape1(3), one, ag_shape1(3), zero, NULL),
             1.5, 1e-6, 0, "kl_normal(mu = 1, logvar = 0) = mu^2 / 2 per element");
    is_close(loss_value(AG_OP_MSE, AG_RED_MEAN, ag_shape1(3), (const float[]){1, 2, 3},
                        ag_shape1(3), (const float[]){1, 0, 6}, NULL),
             13.0 / 3, 1e-6, 1e-6, "mse mean");
    /* Scores 2, 0.5, -1 against real (1) and fake (-1): the margins 1 - t s. */
    const float scores[3] = {2, 0.5f, -1}, real[3] = {1, 1, 1}, fake[3] = {-1, -1, -1};
    is_close(loss_value(AG_OP_HINGE, AG_RED_SUM, ag_shape1(3), scores, ag_shape1(3), real, NULL),
             0 + 0.5 + 2, 1e-6, 0, "hinge, real: max(0, 1 - s) summed");
    is_close(loss_value(AG_OP_HINGE, AG_RED_MEAN, ag_shape1(3), scores, ag_shape1(3), fake, NULL),
             (3 + 1.5 + 0) / 3.0, 1e-6, 0, "hinge, fake: max(0, 1 + s), the mean");
    is_close(loss_value(AG_OP_WASSERSTEIN, AG_RED_MEAN, ag_shape1(3), scores, ag_shape1(3), real, NULL),
             -0.5, 1e-6, 0, "wasserstein, real: -mean(s)");
    is_close(loss_value(AG_OP_WASSERSTEIN, AG_RED_SUM, ag_shape1(3), scores, ag_shape1(3), fake, NULL),
             1.5, 1e-6, 0, "wasserstein, fake: sum(s)");
    loss_value(AG_OP_HINGE, AG_RED_NONE, ag_shape1(3), scores, ag_shape1(3), fake, each);
    ok(each[0] == 3 && each[1] == 1.5f && each[2] == 0, "hinge without reduction: one margin per score");
    is_close(loss_value(AG_OP_L1, AG_RED_SUM, ag_shape1(3), (const float[]){1, 2, 3},
                        ag_shape1(3), (const float[]){1, 0, 6}, NULL),
             5, 1e-6, 0, "l1 sum");
}

/* ------------------------------------------------------------- messages -- */

static const ag_loc spec_loc = {"specs/vae.yaml", 21, 13};

static void test_bce_target_range(void)
{
    fixture f;
    fx_init(&f, 1);
    ag_graph_set_loc(&f.g, spec_loc);
    ag_node *p = ag_input(&f.g, "p", ag_shape1(4), 0), *t = ag_input(&f.g, "t", ag_shape1(4), 0);
    ag_node *l = ag_loss(&f.g, AG_OP_BCE, p, t, AG_RED_SUM);
    if (fx_plan(&f, l)) {
        set(p, (const float[]){0.5f, 0.5f, 0.5f, 0.5f});
        set(t, (const float[]){0, 1, -0.5f, 1});
        ok(ag_forward(&f.g, 0, f.g.n) == AG_ERR, "bce with a target of -0.5 fails");
        is_str(f.g.err.msg,
               "specs/vae.yaml:21:13: bce: target -0.5 at element 2 is outside [0, 1]; bce "
               "targets are probabilities (is the data scaled to [-1, 1]?)",
               "the message names the value, the element and the likely cause");
    }
    fx_free(&f);

    fx_init(&f, 1);
    p = ag_input(&f.g, "p", ag_shape1(2), 0);
    t = ag_input(&f.g, "t", ag_shape1(2), 0);
    l = ag_loss(&f.g, AG_OP_BCE, p, t, AG_RED_SUM);
    if (fx_plan(&f, l)) {
        set(p, (const float[]){0.5f, 1.5f});
        set(t, (const float[]){0, 1});
        ok(ag_forward(&f.g, 0, f.g.n) == AG_ERR, "bce with an input of 1.5 fails");
        is_str(f.g.err.msg,
               "bce: input 1.5 at element 1 is outside [0, 1]; bce takes probabilities (end "
               "the model with sigmoid, or use bce_with_logits)",
               "the message suggests sigmoid or bce_with_logits");
    }
    fx_free(&f);
}

/* The range check rides on the terms (a bad element's term is NaN): each reduction
 * reports the first bad element, a NaN too, wherever the pool's blocks put it. */
static void test_bce_range_reductions(void)
{
    enum { N = 20000 };
    static float pv[N], tv[N];
    static const struct {
        ag_reduction red;
        int bad;
        float p, t;
        const char *msg;
    } cases[] = {
        {AG_RED_NONE, 3, 0.5f, 2.0f, "bce: target 2 at element 3 is outside [0, 1]"},
        {AG_RED_MEAN, 7, NAN, 1.0f, "bce: input nan at element 7 is outside [0, 1]"},
        {AG_RED_SUM, 17001, 0.5f, -1.0f, "bce: target -1 at element 17001 is outside [0, 1]"},
        {AG_RED_SUM, N - 1, -0.25f, 0.0f, "bce: input -0.25 at element 19999 is outside [0, 1]"},
    };
    for (int threads = 1; threads <= 2; threads++) {
        ag_set_threads(threads);
        for (size_t c = 0; c < AG_COUNTOF(cases); c++) {
            fixture f;
            fx_init(&f, 1);
            ag_node *p = ag_input(&f.g, "p", ag_shape1(N), 0), *t = ag_input(&f.g, "t", ag_shape1(N), 0);
            ag_node *l = ag_loss(&f.g, AG_OP_BCE, p, t, cases[c].red);
            if (fx_plan(&f, l)) {
                for (int k = 0; k < N; k++) {
                    pv[k] = 0.25f + 0.5f * (float)(k % 7) / 7;
                    tv[k] = (float)(k % 2);
                }
                pv[cases[c].bad] = cases[c].p;
                tv[cases[c].bad] = cases[c].t;
                set(p, pv);
                set(t, tv);
                if (!ok(ag_forward(&f.g, 0, f.g.n) == AG_ERR && strstr(f.g.err.msg, cases[c].msg),
                        "bce on %d thread(s): %s", threads, cases[c].msg))
                    diag("got '%s'", f.g.err.msg);
                tv[cases[c].bad] = 1;
                pv[cases[c].bad] = 0.5f;
                set(p, pv);
                set(t, tv);
                ok(ag_forward(&f.g, 0, f.g.n) == AG_OK && isfinite(l->data[0]),
                   "and with the element mended it passes");
            }
            fx_free(&f);
        }
    }
    ag_set_threads(1);
}

static void test_cross_entropy_index(void)
{
    fixture f;
    fx_init(&f, 1);
    ag_node *x = ag_input(&f.g, "x", ag_shape2(2, 3), 0), *t = ag_input(&f.g, "t", ag_shape1(2), 0);
    ag_node *l = ag_loss(&f.g, AG_OP_CROSS_ENTROPY, x, t, AG_RED_MEAN);
    if (fx_plan(&f, l)) {
        set(x, (const float[]){0, 0, 0, 0, 0, 0});
        set(t, (const float[]){1, 3});
        ok(ag_forward(&f.g, 0, f.g.n) == AG_ERR, "cross_entropy with class 3 of 3 fails");
        is_str(f.g.err.msg, "cross_entropy: target 3 in row 1 is not a class index in [0, 3)",
               "the message names the target, the row and the range");
    }
    fx_free(&f);
}

/* Logits [B, T, V] are rows like [B * T, V]: the same losses, row by row. */
static void test_cross_entropy_sequence(void)
{
    fixture f;
    fx_init(&f, 1);
    ag_node *x3 = ag_input(&f.g, "x", ag_shape3(2, 2, 3), 0), *t2 = ag_input(&f.g, "t", ag_shape2(2, 2), 0);
    ag_node *x2 = ag_reshape(&f.g, x3, 2, (const int[]){4, 3});
    ag_node *t1 = ag_reshape(&f.g, t2, 1, (const int[]){4});
    ok(!ag_loss(&f.g, AG_OP_CROSS_ENTROPY, x3, ag_input(&f.g, "t3", ag_shape2(2, 3), 0), AG_RED_MEAN),
       "targets [2, 3] for logits [2, 2, 3] are refused");
    is_str(f.g.err.msg, "cross_entropy: the targets have shape [2, 3] but the logits [2, 2, 3] need one "
           "class index per row", "the message names both shapes");
    ag_node *none = ag_loss(&f.g, AG_OP_CROSS_ENTROPY, x3, t2, AG_RED_NONE);
    ag_node *a = ag_loss(&f.g, AG_OP_CROSS_ENTROPY, x3, t2, AG_RED_MEAN);
    ag_node *b = ag_loss(&f.g, AG_OP_CROSS_ENTROPY, x2, t1, AG_RED_MEAN);
    if (fx_plan(&f, b) && a && none) {
        set(x3, (const float[]){1, 2, 3, -1, 0, 4, 2, 2, 0, 0.5f, -3, 1});
        set(t2, (const float[]){2, 0, 1, 2});
        ag_forward(&f.g, 0, f.g.n);
        is_close(a->data[0], b->data[0], 1e-6, 1e-6, "cross_entropy of [2, 2, 3] logits is that of [4, 3]");
        ok(none->shape.ndim == 2 && none->shape.d[0] == 2 && none->shape.d[1] == 2,
           "cross_entropy with reduction none is shaped like the targets");
    }
    fx_free(&f);
}

/* Draws follow softmax(logits); top_k leaves only the k largest. */
static void test_categorical(void)
{
    fixture f;
    fx_init(&f, 7);
    enum { N = 20000 };
    ag_node *x = ag_input(&f.g, "x", ag_shape2(N, 4), 0);
    ag_node *all = ag_categorical(&f.g, x, 0), *top2 = ag_categorical(&f.g, x, 2);
    if (fx_plan(&f, top2) && all) {
        const float row[4] = {0, logf(2), logf(3), logf(4)}; /* p = 1, 2, 3, 4 over 10 */
        for (int r = 0; r < N; r++) memcpy(x->data + 4 * r, row, sizeof row);
        ag_forward(&f.g, 0, f.g.n);
        int count[4] = {0}, count2[4] = {0}, whole = 1;
        for (int r = 0; r < N; r++) {
            whole &= all->data[r] == floorf(all->data[r]) && all->data[r] >= 0 && all->data[r] < 4;
            count[(int)all->data[r]]++;
            count2[(int)top2->data[r]]++;
        }
        ok(whole && all->shape.ndim == 1 && all->shape.d[0] == N, "categorical: one class index per row");
        for (int k = 0; k < 4; k++)
            is_close((double)count[k] / N, (k + 1) / 10.0, 0.015, 0, "categorical: class %d drawn with p = %d/10",
                     k, k + 1);
        ok(count2[0] == 0 && count2[1] == 0, "categorical top_k=2: the two smallest logits are never drawn");
        is_close((double)count2[3] / N, 4 / 7.0, 0.015, 0, "categorical top_k=2: class 3 drawn with p = 4/7");
        x->data[5] = NAN;
        ok(ag_forward(&f.g, 0, f.g.n) == AG_ERR, "categorical of a NaN logit fails");
        is_str(f.g.err.msg, "categorical: logit nan at row 1, class 1", "the message names the row and class");
    }
    fx_free(&f);
}

static void test_shape_messages(void)
{
    fixture f;
    fx_init(&f, 1);
    ag_graph_set_loc(&f.g, spec_loc);
    ag_node *x = ag_input(&f.g, "x", ag_shape2(0, 100), 1);
    ag_node *w = ag_input(&f.g, "w", ag_shape2(400, 784), 0);
    ok(!ag_linear(&f.g, x, w, NULL), "linear refuses 100 features for a 784-input weight");
    is_str(f.g.err.msg,
           "specs/vae.yaml:21:13: linear: input has 100 features but the weight expects 784",
           "the message names both sizes");
    ag_node *w2 = ag_input(&f.g, "w2", ag_shape2(400, 100), 0);
    ok(!ag_linear(&f.g, x, w2, ag_input(&f.g, "b", ag_shape1(300), 0)),
       "a bias of the wrong size");
    is_str(f.g.err.msg,
           "specs/vae.yaml:21:13: linear: the bias has shape [300] but the weight has 400 "
           "outputs", "the message names the bias shape and the output count");
    ag_node *y = ag_linear(&f.g, x, w2, NULL);
    char buf[64];
    is_str(y ? ag_shape_str(&y->shape, y->batched, buf, sizeof buf) : f.g.err.msg, "[B, 400]",
           "linear of [B, 100] by [400, 100] is [B, 400]");
    ag_node *t = ag_input(&f.g, "t", ag_shape2(0, 784), 1);
    ok(!ag_loss(&f.g, AG_OP_MSE, y, t, AG_RED_MEAN), "mse of different shapes");
    is_str(f.g.err.msg,
           "specs/vae.yaml:21:13: mse: the target has shape [B, 784] but the input has shape "
           "[B, 400]", "the message names both shapes");
    fx_free(&f);
}

int main(void)
{
    ag_set_threads(1);
    test_grad_matmul();
    test_grad_linear();
    test_grad_linear_fused();
    test_linear_fusion();
    test_bias_grad_threads();
    test_linear_grads_paired();
    test_grad_losses();
    test_grad_dropout();
    test_detach();
    test_bce_target_gets_no_gradient();
    test_random_leaves();
    test_random_leaves_repeat();
    test_dropout_behaviour();
    test_loss_values();
    test_bce_target_range();
    test_bce_range_reductions();
    test_cross_entropy_index();
    test_cross_entropy_sequence();
    test_categorical();
    test_shape_messages();
    return tap_done();
}
