/* test_norm_attn.c — layer_norm, group_norm, batch_norm, embedding, causal attention,
 * timestep_embedding and masked_linear: finite-difference gradients of every
 * differentiable input over several shapes, values and gradients against PyTorch
 * (tests/golden/norm_attn.txt, from scripts/golden/make_norm_attn.py), attention
 * against a naive reference and for causality, and the messages a user sees. */
#include "aigc/graph.h"
#include "golden.h"
#include "gradcheck.h"
#include "fixture.h"
#include "tap.h"
#include "threads.h"

static void fill_uniform(rng *r, ag_node *n, float lo, float hi)
{
    int64_t len = ag_numel(&n->shape);
    for (int64_t k = 0; k < len; k++) n->data[k] = lo + (hi - lo) * rng_uniform(r);
}

static const ag_loc spec_loc = {"specs/gpt.yaml", 12, 7};

/* ------------------------------------------------------------- gradients -- */

typedef struct norm_ctx {
    int groups;     /* group_norm; 0 for layer_norm */
    int affine;     /* 0: none, 1: weight, 2: weight and bias */
} norm_ctx;

static ag_node *build_norm(ag_graph *g, ag_node **in, void *ctx)
{
    const norm_ctx *c = ctx;
    ag_node *w = c->affine > 0 ? in[1] : NULL, *b = c->affine > 1 ? in[2] : NULL;
    if (c->groups) return ag_group_norm(g, in[0], c->groups, w, b, 1e-5f);
    return ag_layer_norm(g, in[0], w, b, 1e-5f);
}

static void grad_norm(ag_shape x, int groups, int affine)
{
    int c = groups ? x.d[1] : x.d[x.ndim - 1];
    gc_input in[3] = {{x, -2, 2, 0, 0}, {ag_shape1(c), 0.5f, 1.5f, 0, 0},
                      {ag_shape1(c), -0.5f, 0.5f, 0, 0}};
    char name[96], sx[64];
    ag_shape_str(&x, 0, sx, sizeof sx);
    static const char *const aff[] = {"no affine", "weight", "weight and bias"};
    if (groups)
        snprintf(name, sizeof name, "group_norm %s, G = %d, %s", sx, groups, aff[affine]);
    else
        snprintf(name, sizeof name, "layer_norm %s, %s", sx, aff[affine]);
    gc_check(name, 1 + affine, in, build_norm, &(norm_ctx){groups, affine});
}

static void test_grad_norms(void)
{
    grad_norm(ag_shape2(3, 5), 0, 2);
    grad_norm(ag_shape3(2, 3, 4), 0, 2);
    grad_norm(ag_shape2(4, 6), 0, 1);
    grad_norm(ag_shape2(2, 5), 0, 0);
    grad_norm(ag_shape4(2, 6, 2, 3), 3, 2);
    grad_norm(ag_shape4(2, 4, 3, 3), 1, 2);
    grad_norm(ag_shape4(3, 4, 2, 2), 4, 2);
    grad_norm(ag_shape3(2, 6, 5), 2, 2);
    grad_norm(ag_shape4(2, 4, 2, 2), 2, 0);
    grad_norm(ag_shape2(3, 6), 3, 2); /* one position per channel, as layer norm's rows */
    grad_norm(ag_shape2(3, 6), 2, 1);
}

/* The running statistics are constants here: FULL leaves, refilled before each run. */
static ag_node *build_batch_norm(ag_graph *g, ag_node **in, void *ctx)
{
    g->training = *(const int *)ctx;
    int c = in[0]->shape.d[1];
    ag_node *rm = ag_full(g, ag_shape1(c), 0, 0.3f), *rv = ag_full(g, ag_shape1(c), 0, 1.7f);
    return ag_batch_norm(g, in[0], in[1], in[2], rm, rv, 1e-5f, 0.1f);
}

static void test_grad_batch_norm(void)
{
    const ag_shape shapes[] = {ag_shape2(6, 4), ag_shape4(3, 4, 2, 2), ag_shape3(2, 3, 5)};
    for (size_t k = 0; k < AG_COUNTOF(shapes); k++)
        for (int training = 1; training >= 0; training--) {
            int c = shapes[k].d[1];
            gc_input in[3] = {{shapes[k], -2, 2, 0, 0}, {ag_shape1(c), 0.5f, 1.5f, 0, 0},
                              {ag_shape1(c), -0.5f, 0.5f, 0, 0}};
            char name[96], sx[64];
            snprintf(name, sizeof name, "batch_norm %s (%s)",
                     ag_shape_str(&shapes[k], 0, sx, sizeof sx),
                     training ? "training" : "evaluation");
            gc_check(name, 3, in, build_batch_norm, &training);
        }
}

static ag_node *build_embedding(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_embedding(g, in[0], in[1]);
}

/* More indices than rows: some repeat, and their gradients must add up. */
static void test_grad_embedding(void)
{
    const ag_shape idx[] = {ag_shape1(5), ag_shape2(2, 4), ag_shape3(2, 2, 3)};
    for (size_t k = 0; k < AG_COUNTOF(idx); k++) {
        gc_input in[2] = {{ag_shape2(7, 3), -1, 1, 0, 0}, {idx[k], 0, 7, 1, 0}};
        char name[96], sx[64];
        snprintf(name, sizeof name, "embedding [7, 3] by indices %s",
                 ag_shape_str(&idx[k], 0, sx, sizeof sx));
        gc_check(name, 2, in, build_embedding, NULL);
    }
}

static ag_node *build_attention(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_causal_attention(g, in[0], *(const int *)ctx);
}

static void test_grad_attention(void)
{
    const struct {
        ag_shape qkv;
        int heads;
    } cases[] = {
        {ag_shape3(2, 4, 18), 2}, {ag_shape3(1, 5, 24), 4}, {ag_shape3(2, 3, 12), 1},
        {ag_shape3(1, 1, 6), 2},  {ag_shape3(1, 6, 9), 3},
    };
    for (size_t k = 0; k < AG_COUNTOF(cases); k++) {
        gc_input in[1] = {{cases[k].qkv, -1.5f, 1.5f, 0, 0}};
        char name[96], sx[64];
        snprintf(name, sizeof name, "causal_attention %s, H = %d",
                 ag_shape_str(&cases[k].qkv, 0, sx, sizeof sx), cases[k].heads);
        gc_check(name, 1, in, build_attention, (void *)&cases[k].heads);
    }
}

static ag_node *build_masked_linear(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_masked_linear(g, in[0], in[1], in[2], ctx ? in[3] : NULL);
}

/* The mask holds 0 and 1, drawn as integers: a plain input, as in MADE. A masked
 * weight's numeric gradient is exactly 0, and so must be the analytic one. */
static void test_grad_masked_linear(void)
{
    int bias = 1;
    gc_input in2[4] = {{ag_shape2(3, 5), -1, 1, 0, 0}, {ag_shape2(4, 5), -1, 1, 0, 0},
                       {ag_shape2(4, 5), 0, 2, 1, 0}, {ag_shape1(4), -1, 1, 0, 0}};
    gc_check("masked_linear [3, 5] with bias", 4, in2, build_masked_linear, &bias);
    gc_check("masked_linear [3, 5] without bias", 3, in2, build_masked_linear, NULL);
    gc_input in3[4] = {{ag_shape3(2, 3, 5), -1, 1, 0, 0}, {ag_shape2(4, 5), -1, 1, 0, 0},
                       {ag_shape2(4, 5), 0, 2, 1, 0}, {ag_shape1(4), -1, 1, 0, 0}};
    gc_check("masked_linear [2, 3, 5] with bias", 4, in3, build_masked_linear, &bias);
}

/* No gradient flows through the timestep embedding: a loss that depends on a
 * parameter only through it has nothing to update. */
static void test_timestep_embedding_no_grad(void)
{
    rng r;
    rng_seed(&r, 1);
    ag_params ps;
    ag_params_init(&ps);
    int pt = ag_params_add(&ps, "t", ag_shape1(3), (ag_loc){0});
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *loss = ag_sum(&g, ag_timestep_embedding(&g, ag_param(&g, pt), 4));
    ag_error err;
    ok(loss && !ag_backward_plan(&g, loss, &pt, 1, &err),
       "timestep_embedding passes no gradient to t");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* --------------------------------------------------------------- PyTorch -- */

static const double ATOL = 1e-5, RTOL = 1e-4;

static ag_shape shape_of(const gd_entry *e)
{
    ag_shape s = {.ndim = e->ndim};
    for (int k = 0; k < e->ndim; k++) s.d[k] = e->d[k];
    return s;
}

enum { GOLD_MAX_IN = 5 };

/* Inputs label.<name> become parameters; build makes y from them. y is compared with
 * label.y, then each input's gradient of sum(y * label.r) with label.grad_<name>. */
typedef ag_node *(*gold_build_fn)(ag_graph *g, ag_node **in);

static void golden_case(const gd_file *f, const char *label, int nin, const char *const *names,
                        gold_build_fn build)
{
    char key[128];
    const gd_entry *e[GOLD_MAX_IN];
    for (int k = 0; k < nin; k++) {
        snprintf(key, sizeof key, "%s.%s", label, names[k]);
        if (!(e[k] = gd_get(f, key))) return;
    }
    snprintf(key, sizeof key, "%s.r", label);
    const gd_entry *er = gd_get(f, key);
    snprintf(key, sizeof key, "%s.y", label);
    const gd_entry *ey = gd_get(f, key);
    if (!er || !ey) return;

    ag_params ps;
    ag_params_init(&ps);
    int idx[GOLD_MAX_IN];
    for (int k = 0; k < nin; k++) idx[k] = ag_params_add(&ps, names[k], shape_of(e[k]), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 1);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *in[GOLD_MAX_IN];
    for (int k = 0; k < nin; k++) in[k] = ag_param(&g, idx[k]);
    ag_node *y = build(&g, in);
    ag_node *rw = ag_input(&g, "r", shape_of(er), 0);
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, y, rw));
    ag_error err = {{0}};
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, idx, nin, &err) : NULL;
    if (!ok(bw && ag_graph_plan(&g, 1, &err) == AG_OK, "%s: builds", label)) {
        diag("%s%s", g.err.msg, err.msg);
    } else {
        for (int k = 0; k < nin; k++) gd_to_float(e[k], in[k]->data);
        gd_to_float(er, rw->data);
        ag_forward(&g, 0, g.n);
        gd_check(y->data, (long)ag_numel(&y->shape), ey, ATOL, RTOL, "%s forward", label);
        ag_backward(&g, bw);
        for (int k = 0; k < nin; k++) {
            snprintf(key, sizeof key, "%s.grad_%s", label, names[k]);
            gd_check(in[k]->grad, e[k]->n, gd_get(f, key), ATOL, RTOL, "%s", key);
        }
    }
    ag_graph_free(&g);
    ag_params_free(&ps);
}

static ag_node *gold_layer_norm(ag_graph *g, ag_node **in)
{
    return ag_layer_norm(g, in[0], in[1], in[2], 1e-5f);
}

static ag_node *gold_group_norm(ag_graph *g, ag_node **in)
{
    return ag_group_norm(g, in[0], 3, in[1], in[2], 1e-5f);
}

static ag_node *gold_attention_2(ag_graph *g, ag_node **in) { return ag_causal_attention(g, in[0], 2); }
static ag_node *gold_attention_4(ag_graph *g, ag_node **in) { return ag_causal_attention(g, in[0], 4); }

static void test_golden_forward_backward(const gd_file *f)
{
    static const char *const xwb[] = {"x", "w", "b"}, *const qkv[] = {"qkv"};
    golden_case(f, "layer_norm", 3, xwb, gold_layer_norm);
    golden_case(f, "group_norm", 3, xwb, gold_group_norm);
    golden_case(f, "attention_a", 1, qkv, gold_attention_2);
    golden_case(f, "attention_b", 1, qkv, gold_attention_4);
}

/* Two training steps from the golden running statistics, then evaluation with what
 * they left: outputs, gradients and the running statistics, as torch.nn.BatchNorm. */
static void golden_batch_norm(const gd_file *f, const char *label)
{
    static const char *const names[] = {"x1", "w", "b", "running_mean0", "running_var0"};
    char key[128];
    const gd_entry *e[5];
    for (int k = 0; k < 5; k++) {
        snprintf(key, sizeof key, "%s.%s", label, names[k]);
        if (!(e[k] = gd_get(f, key))) return;
    }
    ag_params ps;
    ag_params_init(&ps);
    int idx[5];
    for (int k = 0; k < 5; k++) idx[k] = ag_params_add(&ps, names[k], shape_of(e[k]), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 1);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *in[5];
    for (int k = 0; k < 5; k++) in[k] = ag_param(&g, idx[k]);
    ag_node *y = ag_batch_norm(&g, in[0], in[1], in[2], in[3], in[4], 1e-5f, 0.1f);
    ag_node *rw = y ? ag_input(&g, "r", y->shape, 0) : NULL;
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, y, rw));
    ag_error err = {{0}};
    /* The running statistics are parameters that no optimizer updates. */
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, idx, 3, &err) : NULL;
    if (!ok(bw && ag_graph_plan(&g, 1, &err) == AG_OK, "%s: builds", label)) {
        diag("%s%s", g.err.msg, err.msg);
        goto done;
    }
    for (int k = 0; k < 5; k++) gd_to_float(e[k], in[k]->data);
    long nx = e[0]->n, nc = e[1]->n;
    const char *const modes[] = {"train", "eval"};
    for (int step = 1; step <= 3; step++) {
        int training = step < 3;
        g.training = training;
        if (training)
            snprintf(key, sizeof key, "%s.x%d", label, step);
        else
            snprintf(key, sizeof key, "%s.x_eval", label);
        const gd_entry *ex = gd_get(f, key);
        if (!ex) goto done;
        gd_to_float(ex, in[0]->data);
        if (step > 1) {
            snprintf(key, sizeof key, "%s.%s.r", label, modes[!training]);
            const gd_entry *er = gd_get(f, key);
            if (!er) goto done;
            gd_to_float(er, rw->data);
        }
        ag_forward(&g, 0, g.n);
        if (training)
            snprintf(key, sizeof key, "%s.y%d", label, step);
        else
            snprintf(key, sizeof key, "%s.y_eval", label);
        gd_check(y->data, nx, gd_get(f, key), ATOL, RTOL, "%s %s", label, key + strlen(label) + 1);
        if (step == 1) continue;
        ag_backward(&g, bw);
        for (int k = 0; k < 3; k++) {
            static const char *const gn[] = {"x", "w", "b"};
            snprintf(key, sizeof key, "%s.%s.grad_%s", label, modes[!training], gn[k]);
            gd_check(in[k]->grad, k ? nc : nx, gd_get(f, key), ATOL, RTOL, "%s", key);
        }
        if (step == 2) {
            snprintf(key, sizeof key, "%s.running_mean2", label);
            gd_check(in[3]->data, nc, gd_get(f, key), 1e-6, 1e-5, "%s after 2 steps", key);
            snprintf(key, sizeof key, "%s.running_var2", label);
            gd_check(in[4]->data, nc, gd_get(f, key), 1e-6, 1e-5, "%s after 2 steps", key);
        }
    }
    snprintf(key, sizeof key, "%s.running_var2", label);
    gd_check(in[4]->data, nc, gd_get(f, key), 1e-6, 1e-5, "%s: evaluation leaves it as it was",
             key);
done:
    ag_graph_free(&g);
    ag_params_free(&ps);
}

static void golden_timestep(const gd_file *f)
{
    const gd_entry *et = gd_get(f, "timestep.t");
    if (!et) return;
    const int dims[] = {16, 9};
    for (size_t k = 0; k < AG_COUNTOF(dims); k++) {
        fixture fx;
        fx_init(&fx, 1);
        ag_node *t = ag_input(&fx.g, "t", shape_of(et), 0);
        ag_node *y = ag_timestep_embedding(&fx.g, t, dims[k]);
        if (fx_plan(&fx, y)) {
            gd_to_float(et, t->data);
            ag_forward(&fx.g, 0, fx.g.n);
            char key[64];
            snprintf(key, sizeof key, "timestep.dim%d", dims[k]);
            gd_check(y->data, (long)ag_numel(&y->shape), gd_get(f, key), ATOL, RTOL,
                     "timestep_embedding dim %d", dims[k]);
        }
        fx_free(&fx);
    }
}

/* ------------------------------------------------------------- attention -- */

/* The definition, in double, one (b, h, t) at a time. */
static void attention_naive(const float *qkv, int b, int t, int c, int heads, float *y)
{
    int d = c / heads;
    double *s = ag_xmalloc((size_t)t * sizeof *s);
    for (int bi = 0; bi < b; bi++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < t; i++) {
                const float *q = qkv + ((int64_t)bi * t + i) * 3 * c + h * d;
                double m = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    const float *k = qkv + ((int64_t)bi * t + j) * 3 * c + c + h * d;
                    double dot = 0;
                    for (int e = 0; e < d; e++) dot += (double)q[e] * k[e];
                    s[j] = dot / sqrt((double)d);
                    m = fmax(m, s[j]);
                }
                for (int j = 0; j <= i; j++) sum += s[j] = exp(s[j] - m);
                for (int e = 0; e < d; e++) {
                    double acc = 0;
                    for (int j = 0; j <= i; j++)
                        acc += s[j] / sum * qkv[((int64_t)bi * t + j) * 3 * c + 2 * c + h * d + e];
                    y[((int64_t)bi * t + i) * c + h * d + e] = (float)acc;
                }
            }
    free(s);
}

static void test_attention_naive(void)
{
    const int cases[][4] = {{2, 5, 12, 2}, {3, 17, 48, 3}, {1, 1, 8, 4}, {2, 33, 64, 8}};
    for (size_t k = 0; k < AG_COUNTOF(cases); k++) {
        int b = cases[k][0], t = cases[k][1], c = cases[k][2], heads = cases[k][3];
        fixture fx;
        fx_init(&fx, 5 + k);
        ag_node *qkv = ag_input(&fx.g, "qkv", ag_shape3(b, t, 3 * c), 0);
        ag_node *y = ag_causal_attention(&fx.g, qkv, heads);
        if (fx_plan(&fx, y)) {
            fill_uniform(&fx.r, qkv, -2, 2);
            ag_forward(&fx.g, 0, fx.g.n);
            int64_t len = ag_numel(&y->shape);
            float *want = ag_xmalloc((size_t)len * sizeof *want);
            attention_naive(qkv->data, b, t, c, heads, want);
            int64_t bad = 0;
            for (int64_t j = 0; j < len; j++) bad += !tap_close(y->data[j], want[j], 1e-5, 1e-4);
            ok(bad == 0, "causal_attention [%d, %d, %d], H = %d, matches the naive definition",
               b, t, 3 * c, heads);
            free(want);
        }
        fx_free(&fx);
    }
}

/* Changing q, k and v at time t changes no output before t, bit for bit, and does
 * change the output at t. */
static void test_attention_causal(void)
{
    int b = 2, t = 9, c = 16, heads = 4;
    fixture fx;
    fx_init(&fx, 11);
    ag_node *qkv = ag_input(&fx.g, "qkv", ag_shape3(b, t, 3 * c), 0);
    ag_node *y = ag_causal_attention(&fx.g, qkv, heads);
    if (fx_plan(&fx, y)) {
        fill_uniform(&fx.r, qkv, -2, 2);
        ag_forward(&fx.g, 0, fx.g.n);
        int64_t len = ag_numel(&y->shape);
        float *before = ag_xmalloc((size_t)len * sizeof *before);
        memcpy(before, y->data, (size_t)len * sizeof *before);
        int causal = 1, changes = 1;
        for (int at = 0; at < t; at++) {
            for (int bi = 0; bi < b; bi++)
                for (int j = 0; j < 3 * c; j++)
                    qkv->data[((int64_t)bi * t + at) * 3 * c + j] += 0.5f + 0.01f * j;
            ag_forward(&fx.g, 0, fx.g.n);
            for (int bi = 0; bi < b; bi++) {
                const float *now = y->data + (int64_t)bi * t * c, *was = before + (int64_t)bi * t * c;
                causal &= memcmp(now, was, (size_t)at * c * sizeof *now) == 0;
                changes &= memcmp(now + at * c, was + at * c, (size_t)c * sizeof *now) != 0;
            }
            memcpy(before, y->data, (size_t)len * sizeof *before);
        }
        ok(causal, "causal_attention: changing time t never changes an output before t");
        ok(changes, "causal_attention: changing time t changes the output at t");
        free(before);
    }
    fx_free(&fx);
}

/* Ops spread over the pool give the 1-thread bits at 2 and 3 threads: the output and
 * every gradient (tests/threads.h). */
static ag_node *th_attention(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_causal_attention(g, in[0], 3);
}

static ag_node *th_group_norm(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_group_norm(g, in[0], 8, in[1], in[2], 1e-5f);
}

static ag_node *th_layer_norm(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_layer_norm(g, in[0], in[1], in[2], 1e-5f);
}

static void test_threads(void)
{
    static const struct {
        const char *what;
        th_build_fn build;
        int nin;
        ag_shape in[3];
    } cases[] = {
        /* more (b, h) pairs (3 x 3) than threads, each with its thread's scratch */
        {"causal_attention [3, 17, 144], H = 3", th_attention, 1, {{3, {3, 17, 144}}}},
        /* the DDPM's: sets of 4 channels of 14 x 14, weight and bias summed over samples */
        {"group_norm [16, 32, 14, 14], 8 groups", th_group_norm, 3,
         {{4, {16, 32, 14, 14}}, {1, {32}}, {1, {32}}}},
        {"layer_norm [64, 37, 128]", th_layer_norm, 3, {{3, {64, 37, 128}}, {1, {128}}, {1, {128}}}},
    };
    for (size_t k = 0; k < AG_COUNTOF(cases); k++)
        for (int threads = 2; threads <= 3; threads++)
            ok(th_agree(1, threads, cases[k].in, cases[k].nin, -2, 2, cases[k].build, NULL),
               "%s at %d threads: the output and every gradient of 1 thread, bit for bit",
               cases[k].what, threads);
}

/* ------------------------------------------------------- other behaviour -- */

static void test_embedding_values(void)
{
    fixture fx;
    fx_init(&fx, 1);
    ag_node *w = ag_input(&fx.g, "w", ag_shape2(4, 3), 0);
    ag_node *ix = ag_input(&fx.g, "ix", ag_shape2(0, 2), 1);
    ag_node *y = ag_embedding(&fx.g, w, ix);
    char buf[64];
    is_str(y ? ag_shape_str(&y->shape, y->batched, buf, sizeof buf) : fx.g.err.msg, "[B, 2, 3]",
           "embedding of [4, 3] by [B, 2] indices is [B, 2, 3]");
    if (fx_plan(&fx, y)) {
        for (int k = 0; k < 12; k++) w->data[k] = (float)k;
        ix->data[0] = 3;
        ix->data[1] = 0;
        ag_forward(&fx.g, 0, fx.g.n);
        const float want[6] = {9, 10, 11, 0, 1, 2};
        ok(memcmp(y->data, want, sizeof want) == 0, "embedding copies rows 3 and 0");
        ix->data[1] = 4;
        ok(ag_forward(&fx.g, 0, fx.g.n) == AG_ERR, "embedding with index 4 of 4 rows fails");
        is_str(fx.g.err.msg, "embedding: index 4 at element 1 is not a row index in [0, 4)",
               "the message names the index, its element and the range");
        ix->data[1] = 1.5f;
        ag_forward(&fx.g, 0, fx.g.n);
        is_str(fx.g.err.msg, "embedding: index 1.5 at element 1 is not a row index in [0, 4)",
               "a fractional index is refused too");
        ix->data[1] = -1;
        ag_forward(&fx.g, 0, fx.g.n);
        is_str(fx.g.err.msg, "embedding: index -1 at element 1 is not a row index in [0, 4)",
               "and a negative one");
    }
    fx_free(&fx);
}

/* y = x (W * mask)^T + b equals linear with a weight masked beforehand. */
static void test_masked_linear_values(void)
{
    fixture fx;
    fx_init(&fx, 3);
    ag_node *x = ag_input(&fx.g, "x", ag_shape2(5, 6), 0);
    ag_node *w = ag_input(&fx.g, "w", ag_shape2(4, 6), 0);
    ag_node *m = ag_input(&fx.g, "m", ag_shape2(4, 6), 0);
    ag_node *wm = ag_input(&fx.g, "wm", ag_shape2(4, 6), 0);
    ag_node *b = ag_input(&fx.g, "b", ag_shape1(4), 0);
    ag_node *y = ag_masked_linear(&fx.g, x, w, m, b), *want = ag_linear(&fx.g, x, wm, b);
    if (fx_plan(&fx, want) && y) {
        fill_uniform(&fx.r, x, -1, 1);
        fill_uniform(&fx.r, w, -1, 1);
        fill_uniform(&fx.r, b, -1, 1);
        for (int k = 0; k < 24; k++) {
            m->data[k] = (float)((k * 7) % 3 == 0);
            wm->data[k] = w->data[k] * m->data[k];
        }
        ag_forward(&fx.g, 0, fx.g.n);
        int same = 1;
        for (int k = 0; k < 20; k++) same &= tap_close(y->data[k], want->data[k], 1e-6, 1e-6);
        ok(same, "masked_linear(x, W, mask, b) = linear(x, W * mask, b)");
    }
    fx_free(&fx);
}

/* A batch of one has no batch statistics to train with. */
static void test_batch_norm_single_value(void)
{
    fixture fx;
    fx_init(&fx, 1);
    ag_graph_set_loc(&fx.g, spec_loc);
    ag_node *x = ag_input(&fx.g, "x", ag_shape2(1, 3), 0);
    ag_node *v = ag_full(&fx.g, ag_shape1(3), 0, 1.0f);
    ag_node *y = ag_batch_norm(&fx.g, x, v, v, v, v, 1e-5f, 0.1f);
    if (fx_plan(&fx, y)) {
        memset(x->data, 0, 3 * sizeof(float));
        ok(ag_forward(&fx.g, 0, fx.g.n) == AG_ERR, "batch_norm trains on no batch of one");
        is_str(fx.g.err.msg,
               "specs/gpt.yaml:12:7: batch_norm: training needs more than one value per "
               "channel, got input [1, 3]", "the message says why and shows the input");
        fx.g.training = 0;
        ok(ag_forward(&fx.g, 0, fx.g.n) == AG_OK, "evaluation takes a batch of one");
    }
    fx_free(&fx);
}

/* One builder call that must fail with want, located at the spec. */
static void refused(ag_graph *g, const ag_node *got, const char *want, const char *what)
{
    char full[512];
    snprintf(full, sizeof full, "specs/gpt.yaml:12:7: %s", want);
    ok(got == NULL, "%s is refused", what);
    is_str(g->err.msg, full, "%s: the message", what);
}

static void test_shape_messages(void)
{
    fixture fx;
    fx_init(&fx, 1);
    ag_graph *g = &fx.g;
    ag_graph_set_loc(g, spec_loc);
    ag_node *x = ag_input(g, "x", ag_shape3(0, 8, 6), 1);
    ag_node *v5 = ag_input(g, "v5", ag_shape1(5), 0), *v6 = ag_input(g, "v6", ag_shape1(6), 0);
    ag_node *img = ag_input(g, "img", ag_shape4(0, 6, 4, 4), 1);
    ag_node *w10 = ag_input(g, "w", ag_shape2(10, 4), 0);
    refused(g, ag_layer_norm(g, x, v5, v6, 1e-5f),
            "layer_norm: the weight has shape [5] but the input has 6 channels",
            "layer_norm with a weight of the wrong size");
    refused(g, ag_layer_norm(g, x, v6, v5, 1e-5f),
            "layer_norm: the bias has shape [5] but the input has 6 channels",
            "layer_norm with a bias of the wrong size");
    refused(g, ag_group_norm(g, img, 4, v6, v6, 1e-5f),
            "group_norm: 6 channels do not split into 4 groups", "group_norm with 4 groups of 6");
    refused(g, ag_group_norm(g, v6, 2, NULL, NULL, 1e-5f),
            "group_norm: the input must be [N, C, ...], got [6]", "group_norm of a vector");
    refused(g, ag_batch_norm(g, img, v6, v6, v6, v5, 1e-5f, 0.1f),
            "batch_norm: the running_var has shape [5] but the input has 6 channels",
            "batch_norm with running_var of the wrong size");
    refused(g, ag_batch_norm(g, img, v6, v6, v6, v6, 1e-5f, 1.5f),
            "batch_norm: momentum 1.5 is outside [0, 1]", "batch_norm with momentum 1.5");
    refused(g, ag_embedding(g, v6, x), "embedding: the weight must be 2-D [V, D], got [6]",
            "embedding with a 1-D table");
    refused(g, ag_embedding(g, w10, img),
            "embedding: the indices [B, 6, 4, 4] leave no room for the 4-wide embedding "
            "dimension", "embedding of 4-D indices");
    refused(g, ag_causal_attention(g, img, 2),
            "causal_attention: qkv must be 3-D [B, T, 3 * C], got [B, 6, 4, 4]",
            "attention of a 4-D input");
    refused(g, ag_causal_attention(g, ag_input(g, "q", ag_shape3(0, 8, 10), 1), 2),
            "causal_attention: the last dimension of qkv [B, 8, 10] is not 3 * C",
            "attention of 10 channels");
    refused(g, ag_causal_attention(g, x, 4), "causal_attention: C = 2 does not split into 4 heads",
            "attention with 4 heads of C = 2");
    refused(g, ag_timestep_embedding(g, x, 8),
            "timestep_embedding: the timesteps must be 1-D [N], got [B, 8, 6]",
            "timestep_embedding of a 3-D input");
    refused(g, ag_timestep_embedding(g, v6, 1),
            "timestep_embedding: the dimension must be at least 2, got 1",
            "timestep_embedding of dimension 1");
    refused(g, ag_masked_linear(g, x, ag_input(g, "w", ag_shape2(3, 6), 0),
                                ag_input(g, "m", ag_shape2(6, 3), 0), NULL),
            "masked_linear: the mask has shape [6, 3] but the weight has shape [3, 6]",
            "masked_linear with a transposed mask");
    refused(g, ag_masked_linear(g, x, ag_input(g, "w", ag_shape2(3, 5), 0),
                                ag_input(g, "m", ag_shape2(3, 5), 0), NULL),
            "masked_linear: input has 6 features but the weight expects 5",
            "masked_linear with 6 features for 5");
    fx_free(&fx);
}

int main(void)
{
    ag_set_threads(1);
    test_grad_norms();
    test_grad_batch_norm();
    test_grad_embedding();
    test_grad_attention();
    test_grad_masked_linear();
    test_timestep_embedding_no_grad();
    gd_file f;
    if (gd_load(&f, "tests/golden/norm_attn.txt") == 0) {
        test_golden_forward_backward(&f);
        golden_batch_norm(&f, "batch_norm_2d");
        golden_batch_norm(&f, "batch_norm_4d");
        golden_timestep(&f);
        gd_free(&f);
    }
    test_attention_naive();
    test_attention_causal();
    test_threads();
    test_embedding_values();
    test_masked_linear_values();
    test_batch_norm_single_value();
    test_shape_messages();
    return tap_done();
}
