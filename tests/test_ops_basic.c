/*
 * test_ops_basic.c — the element-wise, reduction, shape and softmax ops.
 *
 * Three kinds of checks: finite-difference gradients of every op over several shapes
 * (broadcasting, negative axes, keepdim both ways), forward values on small cases
 * worked out by hand or with PyTorch, and the exact messages of shape errors.
 */
#include <math.h>
#include <string.h>

#include "aigc/graph.h"
#include "gradcheck.h"
#include "tap.h"

/* ---- gradient checks ------------------------------------------------------------ */

typedef struct gcase {
    ag_op op;
    int nin;
    gc_input in[GC_MAX_IN];
    float f[AG_MAX_FP];
    int i[AG_MAX_IP];
} gcase;

#define IN(s, l, h) {.shape = (s), .lo = (l), .hi = (h)}
/* Index values 0 .. n-1, stored as floats. */
#define IDX(s, n) {.shape = (s), .lo = 0, .hi = (float)(n), .integer = 1}

static ag_node *build_case(ag_graph *g, ag_node **in, void *ctx)
{
    const gcase *c = ctx;
    return ag_new(g, c->op, c->nin, in, c->f, c->i);
}

/* Names a case after its op, its inputs' shapes and its integer parameters. */
static void check_case(gcase c, const char *params)
{
    char name[256], buf[64];
    int k = snprintf(name, sizeof name, "%s", ag_op_defs[c.op]->name);
    for (int j = 0; j < c.nin; j++)
        k += snprintf(name + k, sizeof name - (size_t)k, "%s%s", j ? " " : " of ",
                      ag_shape_str(&c.in[j].shape, 0, buf, sizeof buf));
    if (params) snprintf(name + k, sizeof name - (size_t)k, " (%s)", params);
    gc_check(name, c.nin, c.in, build_case, &c);
}

static void grad_binary(void)
{
    const ag_shape pairs[][2] = {
        {ag_shape2(2, 3), ag_shape2(2, 3)},
        {ag_shape2(2, 3), ag_shape1(3)},
        {ag_shape1(3), ag_shape2(2, 3)},
        {ag_shape3(4, 1, 3), ag_shape2(2, 1)},
        {ag_shape0(), ag_shape2(2, 3)},
        {ag_shape2(2, 3), ag_shape0()},
        {ag_shape4(2, 1, 3, 1), ag_shape4(1, 2, 1, 2)},
        {ag_shape3(2, 3, 4), ag_shape3(2, 1, 4)},
        {ag_shape3(2, 3, 4), ag_shape2(3, 4)}, /* pos_embedding: [B, T, C] + [T, C] */
    };
    const ag_op ops[] = {AG_OP_ADD, AG_OP_SUB, AG_OP_MUL, AG_OP_DIV};
    for (size_t o = 0; o < AG_COUNTOF(ops); o++)
        for (size_t p = 0; p < AG_COUNTOF(pairs); p++) {
            /* a divisor stays away from 0 */
            float lo = ops[o] == AG_OP_DIV ? 0.5f : -2.0f;
            gcase c = {.op = ops[o], .nin = 2,
                       .in = {IN(pairs[p][0], -2, 2), IN(pairs[p][1], lo, 2)}};
            check_case(c, NULL);
        }
}

/* x * x: both gradient contributions land in the same buffer. */
static ag_node *build_square(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_binary(g, AG_OP_MUL, in[0], in[0]);
}

static void grad_unary(void)
{
    /* Ranges keep clear of the kinks (relu, abs, clamp at its bounds) by more than the
     * difference step, and of 0 where the op divides by x. */
    const struct {
        ag_op op;
        float f[2];
        float lo, hi;
    } cases[] = {
        {AG_OP_AFFINE, {2.5f, -1}, -2, 2},
        {AG_OP_RDIV, {1.5f}, 0.5f, 2},
        {AG_OP_RDIV, {-2}, -2, -0.5f},
        {AG_OP_NEG, {0}, -2, 2},
        {AG_OP_EXP, {0}, -2, 2},
        {AG_OP_LOG, {0}, 0.5f, 3},
        {AG_OP_SQRT, {0}, 0.5f, 3},
        {AG_OP_POW, {3}, -2, 2},
        {AG_OP_POW, {0.5f}, 0.5f, 3},
        {AG_OP_POW, {-1.5f}, 0.5f, 2},
        {AG_OP_ABS, {0}, 0.1f, 2},
        {AG_OP_ABS, {0}, -2, -0.1f},
        {AG_OP_CLAMP, {-0.5f, 0.5f}, -0.4f, 0.4f},
        {AG_OP_CLAMP, {-0.5f, 0.5f}, 0.6f, 2},
        {AG_OP_CLAMP, {-0.5f, 0.5f}, -2, -0.6f},
        {AG_OP_CLAMP, {-INFINITY, 0.5f}, -3, 0.4f},
        {AG_OP_RELU, {0}, 0.1f, 2},
        {AG_OP_RELU, {0}, -2, -0.1f},
        {AG_OP_LEAKY_RELU, {0.2f}, 0.1f, 2},
        {AG_OP_LEAKY_RELU, {0.2f}, -2, -0.1f},
        {AG_OP_ELU, {1.0f}, 0.1f, 2},
        {AG_OP_ELU, {0.5f}, -2, -0.1f},
        {AG_OP_TANH, {0}, -3, 3},
        {AG_OP_SIGMOID, {0}, -4, 4},
        {AG_OP_SOFTPLUS, {1, 20}, -3, 3},
        {AG_OP_SOFTPLUS, {2, 1}, -2, 0.4f},
        {AG_OP_SOFTPLUS, {2, 1}, 0.6f, 2},
        {AG_OP_SILU, {0}, -3, 3},
        {AG_OP_GELU, {0}, -3, 3},
    };
    const ag_shape shapes[] = {ag_shape2(2, 3), ag_shape4(2, 1, 3, 2), ag_shape0()};
    for (size_t k = 0; k < AG_COUNTOF(cases); k++)
        for (size_t s = 0; s < AG_COUNTOF(shapes); s++) {
            gcase c = {.op = cases[k].op, .nin = 1,
                       .in = {IN(shapes[s], cases[k].lo, cases[k].hi)},
                       .f = {cases[k].f[0], cases[k].f[1]}};
            char params[64];
            snprintf(params, sizeof params, "f %g %g, x in [%g, %g)", cases[k].f[0],
                     cases[k].f[1], cases[k].lo, cases[k].hi);
            check_case(c, params);
        }
    gc_input sq = IN(ag_shape2(2, 3), -2, 2);
    gc_check("mul of a node by itself", 1, &sq, build_square, NULL);
}

static void grad_reduce(void)
{
    const ag_shape shapes[] = {ag_shape1(5), ag_shape2(2, 3), ag_shape3(2, 3, 4)};
    for (size_t s = 0; s < AG_COUNTOF(shapes); s++) {
        check_case((gcase){.op = AG_OP_SUM, .nin = 1, .in = {IN(shapes[s], -2, 2)}}, NULL);
        check_case((gcase){.op = AG_OP_MEAN, .nin = 1, .in = {IN(shapes[s], -2, 2)}}, NULL);
    }
    const ag_op ops[] = {AG_OP_SUM_AXIS, AG_OP_MEAN_AXIS};
    const ag_shape x = ag_shape3(2, 3, 4);
    for (size_t o = 0; o < AG_COUNTOF(ops); o++)
        for (int axis = -3; axis < 3; axis++)
            for (int keep = 0; keep < 2; keep++) {
                char params[64];
                snprintf(params, sizeof params, "axis %d, keepdim %d", axis, keep);
                check_case((gcase){ops[o], 1, {IN(x, -2, 2)}, {0}, {axis, keep}}, params);
            }
    check_case((gcase){AG_OP_MEAN_AXIS, 1, {IN(ag_shape1(4), -2, 2)}, {0}, {0, 0}},
               "axis 0 of a vector, to a scalar");
}

static void grad_shape(void)
{
    const struct {
        gcase c;
        const char *params;
    } cases[] = {
        {{AG_OP_RESHAPE, 1, {IN(ag_shape3(2, 3, 4), -2, 2)}, {0}, {4, -1, 0, 0, 2}},
         "to [4, -1]"},
        {{AG_OP_RESHAPE, 1, {IN(ag_shape2(6, 4), -2, 2)}, {0}, {2, 3, 4, 0, 3}},
         "to [2, 3, 4]"},
        {{AG_OP_RESHAPE, 1, {IN(ag_shape2(2, 3), -2, 2)}, {0}, {-1, 0, 0, 0, 1}},
         "to [-1]"},
        {{AG_OP_CONCAT, 2, {IN(ag_shape2(2, 3), -2, 2), IN(ag_shape2(1, 3), -2, 2)}, {0},
          {0}},
         "axis 0"},
        {{AG_OP_CONCAT, 3,
          {IN(ag_shape2(2, 3), -2, 2), IN(ag_shape2(2, 2), -2, 2),
           IN(ag_shape2(2, 1), -2, 2)},
          {0}, {-1}},
         "axis -1"},
        {{AG_OP_CONCAT, 4,
          {IN(ag_shape3(2, 1, 3), -2, 2), IN(ag_shape3(2, 2, 3), -2, 2),
           IN(ag_shape3(2, 1, 3), -2, 2), IN(ag_shape3(2, 3, 3), -2, 2)},
          {0}, {1}},
         "axis 1"},
        {{AG_OP_SLICE, 1, {IN(ag_shape2(4, 5), -2, 2)}, {0}, {1, 1, 4}}, "axis 1, [1, 4)"},
        {{AG_OP_SLICE, 1, {IN(ag_shape2(4, 5), -2, 2)}, {0}, {0, 2, 4}}, "axis 0, [2, 4)"},
        {{AG_OP_SLICE, 1, {IN(ag_shape2(4, 5), -2, 2)}, {0}, {-1, -3, -1}},
         "axis -1, [-3, -1)"},
        {{AG_OP_SLICE, 1, {IN(ag_shape3(2, 5, 3), -2, 2)}, {0}, {1, 1, 3}},
         "axis 1, [1, 3)"},
        {{AG_OP_ROW_PART, 1, {IN(ag_shape3(6, 2, 3), -2, 2)}, {0}, {1, 3}}, "rows [2, 4) of 6"},
        {{AG_OP_ROW_PART, 1, {IN(ag_shape2(4, 5), -2, 2)}, {0}, {3, 4}}, "the last row of 4"},
        {{AG_OP_GATHER, 2, {IN(ag_shape2(3, 4), -2, 2), IDX(ag_shape2(3, 5), 4)}, {0}, {1}},
         "axis 1, repeated indices"},
        {{AG_OP_GATHER, 2, {IN(ag_shape2(3, 4), -2, 2), IDX(ag_shape2(2, 4), 3)}, {0}, {0}},
         "axis 0"},
        {{AG_OP_GATHER, 2, {IN(ag_shape2(3, 4), -2, 2), IDX(ag_shape2(2, 2), 4)}, {0}, {1}},
         "axis 1, index smaller than the input"},
        {{AG_OP_GATHER, 2, {IN(ag_shape3(2, 3, 4), -2, 2), IDX(ag_shape3(2, 2, 4), 3)}, {0},
          {-2}},
         "axis -2"},
        {{AG_OP_SOFTMAX, 1, {IN(ag_shape2(2, 5), -3, 3)}, {0}, {-1}}, "axis -1"},
        {{AG_OP_SOFTMAX, 1, {IN(ag_shape2(2, 5), -3, 3)}, {0}, {0}}, "axis 0"},
        {{AG_OP_SOFTMAX, 1, {IN(ag_shape3(2, 3, 4), -3, 3)}, {0}, {1}}, "axis 1"},
        {{AG_OP_LOG_SOFTMAX, 1, {IN(ag_shape2(2, 5), -3, 3)}, {0}, {-1}}, "axis -1"},
        {{AG_OP_LOG_SOFTMAX, 1, {IN(ag_shape2(2, 5), -3, 3)}, {0}, {0}}, "axis 0"},
        {{AG_OP_LOG_SOFTMAX, 1, {IN(ag_shape3(2, 3, 4), -3, 3)}, {0}, {-2}}, "axis -2"},
    };
    for (size_t k = 0; k < AG_COUNTOF(cases); k++) check_case(cases[k].c, cases[k].params);
}

/* ---- forward values --------------------------------------------------------------- */

/* A graph of literal inputs, planned and run forward once. */
enum { FX_MAX_LIT = 4 };
typedef struct fx {
    ag_params ps;
    rng r;
    ag_graph g;
    int nlit;
    ag_node *lit[FX_MAX_LIT];
    const float *val[FX_MAX_LIT];
} fx;

static void fx_open(fx *f)
{
    memset(f, 0, sizeof *f);
    ag_params_init(&f->ps);
    ag_params_alloc(&f->ps);
    rng_seed(&f->r, 1);
    ag_graph_init(&f->g, &f->ps, &f->r);
}

static ag_node *fx_lit(fx *f, ag_shape s, const float *v)
{
    AG_ASSERT(f->nlit < FX_MAX_LIT);
    ag_node *n = ag_input(&f->g, "lit", s, 0);
    f->lit[f->nlit] = n;
    f->val[f->nlit++] = v;
    return n;
}

static int fx_run(fx *f)
{
    ag_error err;
    if (ag_graph_plan(&f->g, 1, &err) != AG_OK) {
        diag("plan failed: %s", err.msg);
        return AG_ERR;
    }
    for (int k = 0; k < f->nlit; k++)
        memcpy(f->lit[k]->data, f->val[k],
               (size_t)ag_numel(&f->lit[k]->shape) * sizeof(float));
    return ag_forward(&f->g, 0, f->g.n);
}

static void fx_close(fx *f)
{
    ag_graph_free(&f->g);
    ag_params_free(&f->ps);
}

/* One TAP line: n has shape want and values close to v (to 1e-6 relative). */
static int has_values(const ag_node *n, ag_shape want, const float *v, const char *what)
{
    char got_s[64], want_s[64];
    if (!n || !ag_shape_eq(&n->shape, &want)) {
        ok(0, "%s", what);
        diag("shape %s, want %s", n ? ag_shape_str(&n->shape, 0, got_s, 64) : "(no node)",
             ag_shape_str(&want, 0, want_s, 64));
        return 0;
    }
    int64_t len = ag_numel(&want);
    for (int64_t k = 0; k < len; k++)
        if (!tap_close(n->data[k], v[k], 1e-6, 1e-6)) {
            ok(0, "%s", what);
            diag("element %lld: got %.9g, want %.9g", (long long)k, n->data[k], v[k]);
            return 0;
        }
    return ok(1, "%s", what);
}

static void values_unary(void)
{
    fx f;
    fx_open(&f);
    ag_graph *g = &f.g;
    ag_node *x = fx_lit(&f, ag_shape1(5), (const float[]){-1, 0, 0.4f, 1, 30});
    ag_node *gelu = ag_unary(g, AG_OP_GELU, x);
    ag_node *sp = ag_softplus(g, x, 1, 20);
    ag_node *sp2 = ag_softplus(g, x, 2, 1);
    ag_node *cl = ag_clamp(g, x, -0.5f, 0.5f);
    ag_node *cl_open = ag_clamp(g, x, -INFINITY, 0.5f);
    ag_node *lr = ag_leaky_relu(g, x, 0.2f);
    ag_node *elu = ag_elu(g, x, 1);
    ag_node *silu = ag_unary(g, AG_OP_SILU, x);
    ag_node *big = fx_lit(&f, ag_shape2(1, 2), (const float[]){-100, 100});
    ag_node *sig = ag_unary(g, AG_OP_SIGMOID, big);
    ok(fx_run(&f) == AG_OK, "unary ops run");
    has_values(gelu, ag_shape1(5),
               (const float[]){-0.158655286f, 0, 0.262168676f, 0.841344714f, 30},
               "gelu (erf)");
    has_values(sp, ag_shape1(5),
               (const float[]){0.313261688f, 0.693147182f, 0.913015246f, 1.313261628f, 30},
               "softplus(beta 1, threshold 20)");
    has_values(sp2, ag_shape1(5),
               (const float[]){0.063464001f, 0.346573591f, 0.585550308f, 1, 30},
               "softplus(beta 2, threshold 1) is x where 2x > 1");
    has_values(cl, ag_shape1(5), (const float[]){-0.5f, 0, 0.4f, 0.5f, 0.5f}, "clamp");
    has_values(cl_open, ag_shape1(5), (const float[]){-1, 0, 0.4f, 0.5f, 0.5f},
               "clamp open below");
    has_values(lr, ag_shape1(5), (const float[]){-0.2f, 0, 0.4f, 1, 30}, "leaky_relu");
    has_values(elu, ag_shape1(5), (const float[]){-0.63212055f, 0, 0.4f, 1, 30}, "elu");
    has_values(silu, ag_shape1(5),
               (const float[]){-0.268941432f, 0, 0.239475071f, 0.731058598f, 30}, "silu");
    has_values(sig, ag_shape2(1, 2), (const float[]){0, 1},
               "sigmoid saturates without overflow");
    fx_close(&f);
}

static void values_binary_reduce(void)
{
    fx f;
    fx_open(&f);
    ag_graph *g = &f.g;
    ag_node *a = fx_lit(&f, ag_shape2(2, 3), (const float[]){1, 2, 3, 4, 5, 6});
    ag_node *b = fx_lit(&f, ag_shape1(3), (const float[]){10, 20, 30});
    ag_node *c = fx_lit(&f, ag_shape2(2, 1), (const float[]){2, 4});
    ag_node *add = ag_binary(g, AG_OP_ADD, a, b);
    ag_node *sub = ag_binary(g, AG_OP_SUB, b, a);
    ag_node *outer = ag_binary(g, AG_OP_MUL, c, b);
    ag_node *div = ag_binary(g, AG_OP_DIV, a, c);
    ag_node *sum = ag_sum(g, a), *mean = ag_mean(g, a);
    ag_node *s0 = ag_sum_axis(g, a, 0, 0), *s1 = ag_sum_axis(g, a, -1, 1);
    ag_node *m1 = ag_mean_axis(g, a, 1, 0);
    ok(fx_run(&f) == AG_OK, "binary ops and reductions run");
    has_values(add, ag_shape2(2, 3), (const float[]){11, 22, 33, 14, 25, 36},
               "[2,3] + [3]");
    has_values(sub, ag_shape2(2, 3), (const float[]){9, 18, 27, 6, 15, 24}, "[3] - [2,3]");
    has_values(outer, ag_shape2(2, 3), (const float[]){20, 40, 60, 40, 80, 120},
               "[2,1] * [3] is an outer product");
    has_values(div, ag_shape2(2, 3), (const float[]){0.5f, 1, 1.5f, 1, 1.25f, 1.5f},
               "[2,3] / [2,1]");
    has_values(sum, ag_shape0(), (const float[]){21}, "sum to a 0-d scalar");
    has_values(mean, ag_shape0(), (const float[]){3.5f}, "mean to a 0-d scalar");
    has_values(s0, ag_shape1(3), (const float[]){5, 7, 9}, "sum_axis 0");
    has_values(s1, ag_shape2(2, 1), (const float[]){6, 15}, "sum_axis -1, keepdim");
    has_values(m1, ag_shape1(2), (const float[]){2, 5}, "mean_axis 1");
    fx_close(&f);
}

static void values_softmax(void)
{
    fx f;
    fx_open(&f);
    ag_graph *g = &f.g;
    ag_node *x = fx_lit(&f, ag_shape1(3), (const float[]){1, 2, 3});
    ag_node *big =
        fx_lit(&f, ag_shape2(3, 2), (const float[]){1000, -5, 1001, -5, 1002, -5});
    ag_node *sm = ag_softmax(g, x, 0), *lsm = ag_log_softmax(g, x, -1);
    ag_node *sm_big = ag_softmax(g, big, 0), *lsm_big = ag_log_softmax(g, big, 0);
    ok(fx_run(&f) == AG_OK, "softmax runs");
    const float p[] = {0.090030573f, 0.244728476f, 0.665240943f};
    const float lp[] = {-2.407605886f, -1.407605886f, -0.407605946f};
    has_values(sm, ag_shape1(3), p, "softmax of [1, 2, 3]");
    has_values(lsm, ag_shape1(3), lp, "log_softmax of [1, 2, 3]");
    const float third = 1.0f / 3, lthird = -1.098612309f;
    has_values(sm_big, ag_shape2(3, 2),
               (const float[]){p[0], third, p[1], third, p[2], third},
               "softmax along axis 0 of [1000, 1001, 1002] does not overflow");
    has_values(lsm_big, ag_shape2(3, 2),
               (const float[]){lp[0], lthird, lp[1], lthird, lp[2], lthird},
               "log_softmax along axis 0 of large values");
    fx_close(&f);
}

static void values_shape(void)
{
    fx f;
    fx_open(&f);
    ag_graph *g = &f.g;
    ag_node *a = fx_lit(&f, ag_shape2(2, 3), (const float[]){1, 2, 3, 4, 5, 6});
    ag_node *b = fx_lit(&f, ag_shape2(2, 1), (const float[]){7, 8});
    ag_node *c = fx_lit(&f, ag_shape2(1, 3), (const float[]){9, 10, 11});
    ag_node *idx = fx_lit(&f, ag_shape2(2, 2), (const float[]){2, 0, 1, 1});
    ag_node *cat1 = ag_concat(g, 2, (ag_node *const[]){a, b}, 1);
    ag_node *cat0 = ag_concat(g, 2, (ag_node *const[]){a, c}, 0);
    ag_node *sl = ag_slice(g, a, 1, 1, 3);
    ag_node *sl_neg = ag_slice(g, a, -1, -1, 3);
    ag_node *ga1 = ag_gather(g, a, 1, idx);
    ag_node *ga0 = ag_gather(g, a, 0, ag_slice(g, idx, 0, 1, 2));
    ag_node *rs = ag_reshape(g, a, 2, (const int[]){3, -1});
    ag_node *rp = ag_row_part(g, cat0, 2, 3);
    ok(fx_run(&f) == AG_OK, "shape ops run");
    has_values(rp, ag_shape2(1, 3), (const float[]){9, 10, 11}, "row_part: the third of three rows");
    has_values(cat1, ag_shape2(2, 4), (const float[]){1, 2, 3, 7, 4, 5, 6, 8},
               "concat axis 1");
    has_values(cat0, ag_shape2(3, 3), (const float[]){1, 2, 3, 4, 5, 6, 9, 10, 11},
               "concat axis 0");
    has_values(sl, ag_shape2(2, 2), (const float[]){2, 3, 5, 6}, "slice axis 1 [1, 3)");
    has_values(sl_neg, ag_shape2(2, 1), (const float[]){3, 6}, "slice axis -1 [-1, 3)");
    has_values(ga1, ag_shape2(2, 2), (const float[]){3, 1, 5, 5},
               "gather axis 1 picks x[i][index[i][j]]");
    has_values(ga0, ag_shape2(1, 2), (const float[]){4, 5},
               "gather axis 0 picks x[index[i][j]][j]");
    has_values(rs, ag_shape2(3, 2), (const float[]){1, 2, 3, 4, 5, 6},
               "reshape to [3, -1]");
    ok(rs && rs->data == a->data, "reshape shares its input's memory");
    fx_close(&f);
}

static void gather_out_of_range(void)
{
    fx f;
    fx_open(&f);
    ag_graph_set_loc(&f.g, (ag_loc){"model.yaml", 7, 3});
    ag_node *x = fx_lit(&f, ag_shape2(2, 3), (const float[]){1, 2, 3, 4, 5, 6});
    ag_node *idx = fx_lit(&f, ag_shape2(2, 1), (const float[]){1, 3});
    ag_gather(&f.g, x, 1, idx);
    ok(fx_run(&f) == AG_ERR, "gather with an index past the end fails at run time");
    is_str(f.g.err.msg,
           "model.yaml:7:3: gather: index 3 is out of range [0, 3) along axis 1",
           "gather names the bad index");
    fx_close(&f);
}

/* ---- shape errors and the batch dim ---------------------------------------------- */

/* One builder call that must fail with exactly the message want. */
static void refused(const ag_graph *g, const ag_node *n, const char *what, const char *want)
{
    ok(n == NULL, "%s is refused", what);
    is_str(g->err.msg, want, "%s: message", what);
}

static void shape_errors(void)
{
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 1);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_graph_set_loc(&g, (ag_loc){"spec.yaml", 3, 5});
    ag_node *xb = ag_input(&g, "x", ag_shape2(0, 3), 1);
    ag_node *x3 = ag_input(&g, "x3", ag_shape3(0, 2, 3), 1);
    ag_node *v4 = ag_input(&g, "v", ag_shape1(4), 0);
    ag_node *m23 = ag_input(&g, "m", ag_shape2(2, 3), 0);
    ag_node *m43 = ag_input(&g, "m", ag_shape2(4, 3), 0);
    ag_node *t513 = ag_input(&g, "t", ag_shape3(5, 1, 3), 0);
    ag_node *idx = ag_input(&g, "i", ag_shape2(2, 1), 0);

    refused(&g, ag_binary(&g, AG_OP_ADD, xb, v4), "batched add with a mismatched vector",
            "spec.yaml:3:5: add: shapes [B, 3] and [4] do not broadcast");
    refused(&g, ag_binary(&g, AG_OP_MUL, m23, m43), "mul of [2, 3] and [4, 3]",
            "spec.yaml:3:5: mul: shapes [2, 3] and [4, 3] do not broadcast");
    refused(&g, ag_binary(&g, AG_OP_SUB, xb, m43), "the batch never matches a fixed size",
            "spec.yaml:3:5: sub: shapes [B, 3] and [4, 3] do not broadcast");
    refused(&g, ag_binary(&g, AG_OP_DIV, t513, xb), "the batch dim must stay first",
            "spec.yaml:3:5: div: shapes [5, 1, 3] and [B, 3] do not broadcast");
    refused(&g, ag_sum_axis(&g, xb, 2, 0), "axis out of range",
            "spec.yaml:3:5: sum_axis: axis 2 is out of range for the 2-D input [B, 3]");
    refused(&g, ag_softmax(&g, m23, -3), "negative axis out of range",
            "spec.yaml:3:5: softmax: axis -3 is out of range for the 2-D input [2, 3]");
    refused(&g, ag_reshape(&g, x3, 2, (const int[]){6, -1}), "reshape of a batched input",
            "spec.yaml:3:5: reshape: the input [B, 2, 3] is batched: the new shape must "
            "start with -1 for the batch, not [6, -1]");
    refused(&g, ag_reshape(&g, x3, 2, (const int[]){-1, 5}), "reshape that splits samples",
            "spec.yaml:3:5: reshape: cannot reshape [B, 2, 3] to [-1, 5]: a sample has 6 "
            "values, not 5");
    refused(&g, ag_reshape(&g, m23, 2, (const int[]){4, -1}), "reshape to a wrong count",
            "spec.yaml:3:5: reshape: cannot reshape [2, 3] (6 values) to [4, -1]");
    refused(&g, ag_reshape(&g, m23, 2, (const int[]){-1, -1}), "reshape with two -1",
            "spec.yaml:3:5: reshape: bad new shape [-1, -1]: dims must be positive, with "
            "at most one -1");
    refused(&g, ag_concat(&g, 2, (ag_node *const[]){xb, xb}, 0), "concat along the batch",
            "spec.yaml:3:5: concat: cannot join [B, 3] along its batch axis 0");
    refused(&g, ag_concat(&g, 2, (ag_node *const[]){m23, m43}, 1), "concat of unequal rows",
            "spec.yaml:3:5: concat: shapes [2, 3] and [4, 3] differ outside the axis 1");
    refused(&g, ag_slice(&g, m23, 1, 2, 5), "slice past the end",
            "spec.yaml:3:5: slice: [2, 5) is not a non-empty range of axis 1 of [2, 3]");
    refused(&g, ag_slice(&g, xb, 0, 0, 1), "slice of the batch",
            "spec.yaml:3:5: slice: cannot slice [B, 3] along its batch axis 0");
    refused(&g, ag_row_part(&g, m43, 0, 3), "row_part of rows that do not divide",
            "spec.yaml:3:5: split: 4 rows do not split into 3 equal parts");
    refused(&g, ag_gather(&g, xb, 1, idx), "gather with a fixed index over a batched input",
            "spec.yaml:3:5: gather: index [2, 1] does not fit input [B, 3] outside the "
            "axis 1");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* Shapes follow the batch: reshape keeps it, reducing axis 0 drops it, a mean over the
 * batch divides by the batch of the moment. */
static void batch_follows(void)
{
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 1);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", ag_shape3(0, 2, 3), 1);
    ag_node *flat = ag_flatten(&g, x);
    ag_node *bias = ag_input(&g, "b", ag_shape1(6), 0);
    ag_node *y = ag_binary(&g, AG_OP_ADD, bias, flat);
    ag_node *over_batch = ag_mean_axis(&g, y, 0, 0);
    ag_node *per_sample = ag_sum_axis(&g, y, -1, 1);
    ag_node *probs = ag_softmax(&g, y, 1);
    ag_error err;
    ok(ag_graph_plan(&g, 4, &err) == AG_OK, "a batched graph plans");
    ok(flat->batched && y->batched && per_sample->batched && probs->batched,
       "reshape, broadcast add, sum_axis -1 and softmax keep the batch");
    ok(!over_batch->batched, "mean over axis 0 drops the batch");

    ag_graph_set_batch(&g, 2);
    for (int k = 0; k < 12; k++) x->data[k] = (float)k;
    for (int k = 0; k < 6; k++) bias->data[k] = 100;
    ok(ag_forward(&g, 0, g.n) == AG_OK, "forward at batch 2");
    has_values(flat, ag_shape2(2, 6), (const float[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
               "flatten at batch 2");
    has_values(over_batch, ag_shape1(6), (const float[]){103, 104, 105, 106, 107, 108},
               "mean over a batch of 2");
    has_values(per_sample, ag_shape2(2, 1), (const float[]){615, 651}, "sum per sample");

    ag_graph_set_batch(&g, 4);
    for (int k = 0; k < 24; k++) x->data[k] = (float)k;
    ok(ag_forward(&g, 0, g.n) == AG_OK, "forward at batch 4");
    has_values(over_batch, ag_shape1(6), (const float[]){109, 110, 111, 112, 113, 114},
               "mean over a batch of 4");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

int main(void)
{
    grad_binary();
    grad_unary();
    grad_reduce();
    grad_shape();
    values_unary();
    values_binary_reduce();
    values_softmax();
    values_shape();
    gather_out_of_range();
    shape_errors();
    batch_follows();
    return tap_done();
}
