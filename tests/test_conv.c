/* test_conv.c — conv2d, conv_transpose2d, avg_pool2d and upsample_nearest2d: against
 * direct-loop references written here, by finite differences, against PyTorch
 * (tests/golden/conv.txt), at a smaller batch than planned, and the messages a user
 * sees for shapes that do not fit. */
#include <stdlib.h>

#include "aigc/graph.h"
#include "golden.h"
#include "gradcheck.h"
#include "fixture.h"
#include "tap.h"
#include "threads.h"

/* ------------------------------------------------------------ references -- */

/* One case of either convolution. Letters as in runtime/ops/conv.c: x [n, c, h, w];
 * conv2d's weight [co, c, kh, kw], conv_transpose2d's [c, co, kh, kw]; strides sh, sw,
 * paddings ph, pw, output paddings oph, opw (transposed only). */
typedef struct cv_case {
    int n, c, h, w, co, kh, kw, sh, sw, ph, pw, oph, opw, bias;
} cv_case;

static int conv_out(int len, int k, int s, int p) { return (len + 2 * p - k) / s + 1; }
static int convt_out(int len, int k, int s, int p, int op)
{
    return (len - 1) * s - 2 * p + k + op;
}

static ag_shape ref_out_shape(const cv_case *t, int transposed)
{
    if (transposed)
        return ag_shape4(t->n, t->co, convt_out(t->h, t->kh, t->sh, t->ph, t->oph),
                         convt_out(t->w, t->kw, t->sw, t->pw, t->opw));
    return ag_shape4(t->n, t->co, conv_out(t->h, t->kh, t->sh, t->ph),
                     conv_out(t->w, t->kw, t->sw, t->pw));
}

/* y[n][o][oy][ox] = b[o] + sum over c, i, j of x[n][c][oy sh - ph + i][ox sw - pw + j]
 * w[o][c][i][j], a gather per output. */
static void ref_conv2d(const cv_case *t, const float *x, const float *w, const float *b,
                       float *y)
{
    int ho = conv_out(t->h, t->kh, t->sh, t->ph), wo = conv_out(t->w, t->kw, t->sw, t->pw);
    for (int n = 0; n < t->n; n++)
        for (int o = 0; o < t->co; o++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double s = b ? b[o] : 0;
                    for (int c = 0; c < t->c; c++)
                        for (int i = 0; i < t->kh; i++)
                            for (int j = 0; j < t->kw; j++) {
                                int iy = oy * t->sh - t->ph + i, ix = ox * t->sw - t->pw + j;
                                if (iy < 0 || iy >= t->h || ix < 0 || ix >= t->w) continue;
                                s += (double)x[((n * t->c + c) * t->h + iy) * t->w + ix] *
                                     w[((o * t->c + c) * t->kh + i) * t->kw + j];
                            }
                    y[((n * t->co + o) * ho + oy) * wo + ox] = (float)s;
                }
}

/* Each input x[n][c][iy][ix] scatters x w[c][o][i][j] to y[n][o][iy sh - ph + i]
 * [ix sw - pw + j]: the transposed convolution by its definition. */
static void ref_conv_transpose2d(const cv_case *t, const float *x, const float *w,
                                 const float *b, float *y)
{
    int ho = convt_out(t->h, t->kh, t->sh, t->ph, t->oph);
    int wo = convt_out(t->w, t->kw, t->sw, t->pw, t->opw);
    double *acc = calloc((size_t)t->n * t->co * ho * wo, sizeof *acc);
    for (int n = 0; n < t->n; n++)
        for (int c = 0; c < t->c; c++)
            for (int iy = 0; iy < t->h; iy++)
                for (int ix = 0; ix < t->w; ix++)
                    for (int o = 0; o < t->co; o++)
                        for (int i = 0; i < t->kh; i++)
                            for (int j = 0; j < t->kw; j++) {
                                int oy = iy * t->sh - t->ph + i, ox = ix * t->sw - t->pw + j;
                                if (oy < 0 || oy >= ho || ox < 0 || ox >= wo) continue;
                                acc[((n * t->co + o) * ho + oy) * wo + ox] +=
                                    (double)x[((n * t->c + c) * t->h + iy) * t->w + ix] *
                                    w[((c * t->co + o) * t->kh + i) * t->kw + j];
                            }
    for (int k = 0; k < t->n * t->co * ho * wo; k++)
        y[k] = (float)(acc[k] + (b ? b[k / (ho * wo) % t->co] : 0));
    free(acc);
}

static void ref_avg_pool2d(const ag_shape *xs, int k, int s, const float *x, float *y)
{
    int h = xs->d[2], w = xs->d[3], ho = (h - k) / s + 1, wo = (w - k) / s + 1;
    for (int p = 0; p < xs->d[0] * xs->d[1]; p++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                double sum = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++)
                        sum += x[(p * h + oy * s + i) * w + ox * s + j];
                y[(p * ho + oy) * wo + ox] = (float)(sum / (k * k));
            }
}

static void ref_upsample(const ag_shape *xs, int s, const float *x, float *y)
{
    int h = xs->d[2], w = xs->d[3];
    for (int p = 0; p < xs->d[0] * xs->d[1]; p++)
        for (int oy = 0; oy < h * s; oy++)
            for (int ox = 0; ox < w * s; ox++)
                y[(p * h * s + oy) * w * s + ox] = x[(p * h + oy / s) * w + ox / s];
}

/* ---------------------------------------------------------------- checks -- */

static float max_abs_diff(const float *a, const float *b, int64_t n)
{
    float worst = 0;
    for (int64_t k = 0; k < n; k++) worst = fmaxf(worst, fabsf(a[k] - b[k]));
    return worst;
}

static ag_shape weight_shape(const cv_case *t, int transposed)
{
    return transposed ? ag_shape4(t->c, t->co, t->kh, t->kw)
                      : ag_shape4(t->co, t->c, t->kh, t->kw);
}

/* The op with every per-dim parameter of the case, through the generic builder. */
static ag_node *build_conv_case(ag_graph *g, const cv_case *t, int transposed, ag_node *x,
                                ag_node *w, ag_node *b)
{
    int ip[AG_MAX_IP] = {t->sh, t->sw, t->ph, t->pw, t->oph, t->opw};
    return ag_new(g, transposed ? AG_OP_CONV_TRANSPOSE2D : AG_OP_CONV2D, b ? 3 : 2,
                  (ag_node *const[]){x, w, b}, NULL, ip);
}

static void case_name(char *buf, size_t len, const cv_case *t, int transposed)
{
    snprintf(buf, len, "%s x [%d, %d, %d, %d] -> %d, k %dx%d, s %dx%d, p %dx%d%s%s",
             transposed ? "conv_transpose2d" : "conv2d", t->n, t->c, t->h, t->w, t->co, t->kh,
             t->kw, t->sh, t->sw, t->ph, t->pw,
             transposed && (t->oph || t->opw) ? ", output_padding" : "",
             t->bias ? ", bias" : "");
}

static const cv_case conv_cases[] = {
    {1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 0, 0, 0},
    {2, 3, 7, 6, 4, 3, 3, 2, 2, 1, 1, 0, 0, 1},   /* batch, non-square, stride 2 */
    {2, 3, 8, 8, 5, 4, 4, 2, 2, 1, 1, 0, 0, 1},   /* a DCGAN discriminator layer */
    {3, 2, 6, 5, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1},   /* 1x1 */
    {2, 4, 6, 6, 2, 1, 1, 2, 2, 0, 0, 0, 0, 0},   /* 1x1 with a stride does unfold */
    {2, 2, 5, 7, 3, 3, 3, 1, 1, 2, 2, 0, 0, 0},   /* padding 2 */
    {1, 3, 9, 7, 2, 4, 3, 2, 1, 1, 2, 0, 0, 1},   /* every parameter differs per dim */
    {1, 2, 3, 3, 2, 5, 5, 1, 1, 1, 1, 0, 0, 1},   /* a kernel that fits only padded */
    {2, 3, 7, 6, 2, 3, 3, 1, 1, 1, 1, 0, 0, 1},   /* 3x3, padding 1: the size kept */
    {1, 2, 6, 5, 3, 3, 5, 1, 1, 0, 2, 0, 0, 0},   /* padding in one dim only */
    {1, 2, 1, 4, 2, 5, 5, 1, 1, 2, 2, 0, 0, 1},   /* more padding rows than output rows */
};

static const cv_case convt_cases[] = {
    {2, 3, 4, 5, 2, 4, 4, 2, 2, 1, 1, 0, 0, 1},   /* a DCGAN generator layer: doubles */
    {1, 2, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1},   /* output_padding 1 */
    {2, 3, 4, 4, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0},   /* 1x1 */
    {2, 2, 3, 5, 3, 3, 3, 1, 1, 0, 0, 0, 0, 0},
    {1, 2, 4, 3, 2, 3, 3, 1, 1, 2, 2, 0, 0, 1},   /* padding 2 */
    {1, 3, 3, 4, 2, 4, 3, 2, 1, 1, 0, 1, 0, 0},   /* every parameter differs per dim */
    {2, 1, 2, 2, 1, 4, 4, 2, 2, 0, 0, 1, 1, 1},
    {1, 2, 3, 3, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1},   /* gaps that only the bias fills */
    {2, 3, 5, 4, 2, 3, 3, 1, 1, 1, 1, 0, 0, 1},   /* 3x3, padding 1: the size kept */
    {1, 2, 3, 6, 3, 5, 5, 1, 1, 2, 2, 0, 0, 0},
};

/* --------------------------------------------------------------- forward -- */

static void check_forward(const cv_case *t, int transposed)
{
    char name[160];
    case_name(name, sizeof name, t, transposed);
    fixture f;
    fx_init(&f, 11);
    ag_node *x = ag_input(&f.g, "x", ag_shape4(t->n, t->c, t->h, t->w), 0);
    ag_node *w = ag_input(&f.g, "w", weight_shape(t, transposed), 0);
    ag_node *b = t->bias ? ag_input(&f.g, "b", ag_shape1(t->co), 0) : NULL;
    ag_node *y = build_conv_case(&f.g, t, transposed, x, w, b);
    ag_error err;
    if (!y || ag_graph_plan(&f.g, 1, &err) != AG_OK) {
        ok(0, "%s: builds and plans: %s", name, y ? err.msg : f.g.err.msg);
        fx_free(&f);
        return;
    }
    ag_shape want = ref_out_shape(t, transposed);
    char sg[64], sw[64];
    if (!is_str(ag_shape_str(&y->shape, 0, sg, sizeof sg),
                ag_shape_str(&want, 0, sw, sizeof sw), "%s: output shape", name)) {
        fx_free(&f);
        return;
    }
    ag_node *in[3] = {x, w, b};
    for (int k = 0; k < 3; k++)
        if (in[k]) rng_fill_uniform(&f.r, in[k]->data, ag_numel(&in[k]->shape), -1, 1);
    /* Stale values where the op writes must not survive. */
    for (int64_t k = 0; k < ag_numel(&y->shape); k++) y->data[k] = NAN;
    ag_forward(&f.g, 0, f.g.n);
    float *ref = malloc((size_t)ag_numel(&want) * sizeof *ref);
    (transposed ? ref_conv_transpose2d : ref_conv2d)(t, x->data, w->data, b ? b->data : NULL,
                                                     ref);
    is_close(max_abs_diff(y->data, ref, ag_numel(&want)), 0, 1e-5, 0,
             "%s: matches the reference", name);
    free(ref);
    fx_free(&f);
}

static void test_forward(void)
{
    for (size_t k = 0; k < AG_COUNTOF(conv_cases); k++) check_forward(&conv_cases[k], 0);
    for (size_t k = 0; k < AG_COUNTOF(convt_cases); k++) check_forward(&convt_cases[k], 1);
}

/* The square builders fill both dims of every parameter. */
static void test_builders(void)
{
    fixture f;
    fx_init(&f, 1);
    ag_node *x = ag_input(&f.g, "x", ag_shape4(1, 2, 4, 4), 0);
    ag_node *w = ag_input(&f.g, "w", ag_shape4(2, 2, 3, 3), 0);
    ag_node *c = ag_conv2d(&f.g, x, w, NULL, 2, 1);
    ag_node *t = ag_conv_transpose2d(&f.g, x, w, NULL, 2, 1, 1);
    ag_node *p = ag_avg_pool2d(&f.g, x, 2, 0);
    ag_node *u = ag_upsample_nearest2d(&f.g, x, 3);
    ok(c && c->i[0] == 2 && c->i[1] == 2 && c->i[2] == 1 && c->i[3] == 1,
       "ag_conv2d: stride and padding in both dims");
    ok(t && t->i[0] == 2 && t->i[1] == 2 && t->i[2] == 1 && t->i[3] == 1 && t->i[4] == 1 &&
           t->i[5] == 1,
       "ag_conv_transpose2d: stride, padding and output_padding in both dims");
    ok(p && p->i[0] == 2 && p->i[1] == 2, "ag_avg_pool2d: stride 0 means the kernel size");
    ok(u && u->shape.d[2] == 12 && u->shape.d[3] == 12,
       "ag_upsample_nearest2d: [1, 2, 12, 12]");
    ok(ag_op_by_name("conv_transpose2d") == AG_OP_CONV_TRANSPOSE2D,
       "the ops are found by name");
    fx_free(&f);
}

typedef struct pool_case {
    ag_shape x;
    int k, s;   /* avg_pool2d kernel and stride; s is upsample's scale when k is 0 */
} pool_case;

static const pool_case pool_cases[] = {
    {{4, {2, 3, 5, 6}}, 2, 2}, /* the odd row is dropped */
    {{4, {1, 2, 5, 4}}, 3, 1}, /* overlapping windows */
    {{4, {1, 1, 7, 7}}, 2, 3}, /* gaps between windows */
    {{4, {2, 2, 3, 4}}, 0, 2},
    {{4, {1, 3, 2, 3}}, 0, 3},
    {{4, {1, 1, 2, 2}}, 0, 1},
};

static ag_node *build_pool(ag_graph *g, ag_node **in, void *ctx)
{
    const pool_case *c = ctx;
    return c->k ? ag_avg_pool2d(g, in[0], c->k, c->s) : ag_upsample_nearest2d(g, in[0], c->s);
}

static void pool_name(char *buf, size_t len, const pool_case *c)
{
    char sx[64];
    ag_shape_str(&c->x, 0, sx, sizeof sx);
    if (c->k)
        snprintf(buf, len, "avg_pool2d %s k %d s %d", sx, c->k, c->s);
    else
        snprintf(buf, len, "upsample_nearest2d %s x%d", sx, c->s);
}

static void test_pool_forward(void)
{
    for (size_t k = 0; k < AG_COUNTOF(pool_cases); k++) {
        const pool_case *c = &pool_cases[k];
        char name[128];
        pool_name(name, sizeof name, c);
        fixture f;
        fx_init(&f, 5);
        ag_node *x = ag_input(&f.g, "x", c->x, 0);
        ag_node *y = build_pool(&f.g, &x, (void *)c);
        ag_error err;
        if (!y || ag_graph_plan(&f.g, 1, &err) != AG_OK) {
            ok(0, "%s: builds and plans", name);
            fx_free(&f);
            continue;
        }
        rng_fill_uniform(&f.r, x->data, ag_numel(&x->shape), -1, 1);
        ag_forward(&f.g, 0, f.g.n);
        float *ref = malloc((size_t)ag_numel(&y->shape) * sizeof *ref);
        if (c->k)
            ref_avg_pool2d(&c->x, c->k, c->s, x->data, ref);
        else
            ref_upsample(&c->x, c->s, x->data, ref);
        is_close(max_abs_diff(y->data, ref, ag_numel(&y->shape)), 0, 1e-6, 0,
                 "%s: matches the reference", name);
        free(ref);
        fx_free(&f);
    }
}

/* ------------------------------------------------------------- gradients -- */

typedef struct conv_ctx {
    const cv_case *t;
    int transposed;
} conv_ctx;

static ag_node *build_conv(ag_graph *g, ag_node **in, void *ctx)
{
    const conv_ctx *c = ctx;
    return build_conv_case(g, c->t, c->transposed, in[0], in[1], c->t->bias ? in[2] : NULL);
}

static void test_grad(void)
{
    for (int transposed = 0; transposed < 2; transposed++) {
        const cv_case *cases = transposed ? convt_cases : conv_cases;
        size_t n = transposed ? AG_COUNTOF(convt_cases) : AG_COUNTOF(conv_cases);
        for (size_t k = 0; k < n; k++) {
            const cv_case *t = &cases[k];
            gc_input in[3] = {{ag_shape4(t->n, t->c, t->h, t->w), -1, 1, 0, 0},
                              {weight_shape(t, transposed), -1, 1, 0, 0},
                              {ag_shape1(t->co), -1, 1, 0, 0}};
            char name[160];
            case_name(name, sizeof name, t, transposed);
            gc_check(name, t->bias ? 3 : 2, in, build_conv, &(conv_ctx){t, transposed});
        }
    }
    for (size_t k = 0; k < AG_COUNTOF(pool_cases); k++) {
        const pool_case *c = &pool_cases[k];
        gc_input in[1] = {{c->x, -1, 1, 0, 0}};
        char name[128];
        pool_name(name, sizeof name, c);
        gc_check(name, 1, in, build_pool, (void *)c);
    }
}

/* ------------------------------------------------------------- PyTorch -- */

static ag_shape shape_of(const gd_entry *e)
{
    ag_shape s = {.ndim = e->ndim};
    for (int k = 0; k < e->ndim; k++) s.d[k] = e->d[k];
    return s;
}

typedef struct golden_case {
    const char *label;
    ag_op op;
    int ip[AG_MAX_IP];
} golden_case;

/* The case's inputs become parameters; y and the gradients of sum(y r) must match. */
static void check_golden(const gd_file *f, const golden_case *c)
{
    static const char *const in_names[] = {"x", "w", "b"};
    const gd_entry *e[3] = {0};
    char name[128];
    int nin = 0;
    for (; nin < 3; nin++) {
        snprintf(name, sizeof name, "%s.%s", c->label, in_names[nin]);
        if (!(e[nin] = gd_find(f, name))) break;
    }
    snprintf(name, sizeof name, "%s.y", c->label);
    const gd_entry *ey = gd_get(f, name);
    snprintf(name, sizeof name, "%s.r", c->label);
    const gd_entry *er = gd_get(f, name);
    if (!nin || !ey || !er) return;

    ag_params ps;
    ag_params_init(&ps);
    int idx[3];
    for (int k = 0; k < nin; k++)
        idx[k] = ag_params_add(&ps, in_names[k], shape_of(e[k]), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 1);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *in[3];
    for (int k = 0; k < nin; k++) in[k] = ag_param(&g, idx[k]);
    ag_node *y = ag_new(&g, c->op, nin, in, NULL, c->ip);
    ag_node *rw = ag_input(&g, "r", shape_of(er), 0);
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, y, rw));
    ag_error err = {{0}};
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, idx, nin, &err) : NULL;
    if (!bw || ag_graph_plan(&g, 1, &err) != AG_OK) {
        ok(0, "%s: builds and plans: %s %s", c->label, g.err.msg, err.msg);
    } else {
        for (int k = 0; k < nin; k++) gd_to_float(e[k], in[k]->data);
        gd_to_float(er, rw->data);
        ag_forward(&g, 0, g.n);
        ag_backward(&g, bw);
        gd_check(y->data, (long)ag_numel(&y->shape), ey, 1e-5, 1e-5, "%s output", c->label);
        for (int k = 0; k < nin; k++) {
            snprintf(name, sizeof name, "%s.grad_%s", c->label, in_names[k]);
            gd_check(in[k]->grad, (long)ag_numel(&in[k]->shape), gd_get(f, name), 1e-5, 1e-5,
                     "%s gradient of %s", c->label, in_names[k]);
        }
    }
    ag_graph_free(&g);
    ag_params_free(&ps);
}

static void test_golden(void)
{
    static const golden_case cases[] = {
        {"conv2d_s2p1", AG_OP_CONV2D, {2, 2, 1, 1}},
        {"conv2d_k1", AG_OP_CONV2D, {1, 1, 0, 0}},
        {"conv_transpose2d_k4s2p1", AG_OP_CONV_TRANSPOSE2D, {2, 2, 1, 1, 0, 0}},
        {"conv_transpose2d_k3s2p1op1", AG_OP_CONV_TRANSPOSE2D, {2, 2, 1, 1, 1, 1}},
        {"avg_pool2d_k2", AG_OP_AVG_POOL2D, {2, 2}},
        {"upsample_nearest2d_x2", AG_OP_UPSAMPLE_NEAREST2D, {2}},
    };
    gd_file f;
    if (gd_load(&f, "tests/golden/conv.txt")) return;
    for (size_t k = 0; k < AG_COUNTOF(cases); k++) check_golden(&f, &cases[k]);
    gd_free(&f);
}

/* --------------------------------------------------------- dynamic batch -- */

/* Planned for 4 images, run on 2: the output follows the batch, the values match the
 * reference on those 2, and the weight gradient sums over exactly those 2 (of
 * sum(y), dW[o][c][i][j] is the sum of the inputs that tap (i, j) reaches). */
static void test_dynamic_batch(void)
{
    const cv_case t = {2, 3, 6, 5, 4, 3, 3, 2, 2, 1, 1, 0, 0, 1};
    ag_params ps;
    ag_params_init(&ps);
    int iw = ag_params_add(&ps, "w", weight_shape(&t, 0), (ag_loc){0});
    int ib = ag_params_add(&ps, "b", ag_shape1(t.co), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 9);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", ag_shape4(0, t.c, t.h, t.w), 1);
    ag_node *w = ag_param(&g, iw), *b = ag_param(&g, ib);
    ag_node *y = ag_conv2d(&g, x, w, b, 2, 1);
    ag_node *loss = ag_sum(&g, y);
    ag_error err;
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, (int[]){iw, ib}, 2, &err) : NULL;
    if (!bw || ag_graph_plan(&g, 4, &err) != AG_OK) {
        ok(0, "dynamic batch: builds and plans: %s", bw ? err.msg : g.err.msg);
        goto done;
    }
    ag_graph_set_batch(&g, t.n);
    char buf[64];
    is_str(ag_shape_str(&y->shape, y->batched, buf, sizeof buf), "[B, 4, 3, 3]",
           "dynamic batch: the output is batched");
    ok(y->shape.d[0] == 2, "dynamic batch: the output has the set batch of 2");
    rng_fill_uniform(&r, x->data, 4 * t.c * t.h * t.w, -1, 1);
    rng_fill_uniform(&r, w->data, ag_numel(&w->shape), -1, 1);
    rng_fill_uniform(&r, b->data, t.co, -1, 1);
    ag_forward(&g, 0, g.n);
    ag_backward(&g, bw);
    float ref[2 * 4 * 3 * 3];
    ref_conv2d(&t, x->data, w->data, b->data, ref);
    is_close(max_abs_diff(y->data, ref, AG_COUNTOF(ref)), 0, 1e-5, 0,
             "dynamic batch: the output matches the reference");
    ok(b->grad[0] == 18 && b->grad[3] == 18,
       "dynamic batch: db counts 2 images x 3 x 3 outputs");
    float worst = 0;
    for (int o = 0; o < t.co; o++)
        for (int c = 0; c < t.c; c++)
            for (int i = 0; i < t.kh; i++)
                for (int j = 0; j < t.kw; j++) {
                    double s = 0;
                    for (int n = 0; n < t.n; n++)
                        for (int oy = 0; oy < 3; oy++)
                            for (int ox = 0; ox < 3; ox++) {
                                int iy = oy * 2 - 1 + i, ix = ox * 2 - 1 + j;
                                if (iy >= 0 && iy < t.h && ix >= 0 && ix < t.w)
                                    s += x->data[((n * t.c + c) * t.h + iy) * t.w + ix];
                            }
                    float got = w->grad[((o * t.c + c) * t.kh + i) * t.kw + j];
                    worst = fmaxf(worst, fabsf(got - (float)s));
                }
    is_close(worst, 0, 1e-5, 0, "dynamic batch: dW sums over the 2 images only");
done:
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* ---------------------------------------------------------------- errors -- */

typedef struct err_case {
    ag_op op;
    ag_shape x, w;
    int bias;       /* > 0: a bias of that length */
    int ip[AG_MAX_IP];
    int batched;
    const char *msg;
} err_case;

/* A batch larger than one sgemm's chunk (runtime/ops/conv.c: 16 images of this size
 * need two chunks, 13 + 3): the output and every gradient of L = sum(y R) against the
 * references, at 1, 2 and 3 threads (the pool spreads each chunk's unfolding and folding
 * over its images, and cuts the sgemms). A convolution's input gradient is the
 * transposed convolution of R with the same weight, and the other way round; the weight
 * gradient is a sum per tap. */
static void check_chunked(int transposed, int threads)
{
    const cv_case t = transposed ? (cv_case){16, 8, 32, 32, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1}
                                 : (cv_case){16, 16, 32, 32, 8, 3, 3, 1, 1, 1, 1, 0, 0, 1};
    const cv_case adj = {t.n, t.co, t.h, t.w, t.c, t.kh, t.kw, 1, 1, 1, 1, 0, 0, 0};
    char name[64];
    snprintf(name, sizeof name, "%s in chunks, %d thread%s",
             transposed ? "conv_transpose2d" : "conv2d", threads, threads > 1 ? "s" : "");
    ag_set_threads(threads);
    ag_shape ys = ref_out_shape(&t, transposed);
    ag_params ps;
    ag_params_init(&ps);
    int ix = ag_params_add(&ps, "x", ag_shape4(t.n, t.c, t.h, t.w), (ag_loc){0});
    int iw = ag_params_add(&ps, "w", weight_shape(&t, transposed), (ag_loc){0});
    int ib = ag_params_add(&ps, "b", ag_shape1(t.co), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 5);
    rng_fill_uniform(&r, ps.data, ps.total, -1, 1);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_param(&g, ix), *w = ag_param(&g, iw), *b = ag_param(&g, ib);
    ag_node *rr = ag_input(&g, "r", ys, 0);
    ag_node *y = build_conv_case(&g, &t, transposed, x, w, b);
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, y, rr));
    ag_error err;
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, (int[]){ix, iw, ib}, 3, &err) : NULL;
    if (!bw || ag_graph_plan(&g, 1, &err) != AG_OK) {
        ok(0, "%s: builds and plans: %s", name, bw ? err.msg : g.err.msg);
        ag_graph_free(&g);
        ag_params_free(&ps);
        ag_set_threads(1);
        return;
    }
    int64_t nx = ag_numel(&x->shape), ny = ag_numel(&ys);
    rng_fill_uniform(&r, rr->data, ny, -1, 1);
    ag_forward(&g, 0, g.n);
    ag_backward(&g, bw);
    float *ref = malloc((size_t)(ny > nx ? ny : nx) * sizeof *ref);
    (transposed ? ref_conv_transpose2d : ref_conv2d)(&t, x->data, w->data, b->data, ref);
    is_close(max_abs_diff(y->data, ref, ny), 0, 1e-5, 0, "%s: the output", name);
    (transposed ? ref_conv2d : ref_conv_transpose2d)(&adj, rr->data, w->data, NULL, ref);
    is_close(max_abs_diff(x->grad, ref, nx), 0, 1e-4, 0, "%s: the input gradient", name);
    /* conv2d's dW[o][c][i][j] pairs x[c] with R[o]; conv_transpose2d's dW[c][o][i][j]
     * pairs x[c] with R[o] shifted the other way: both are x against R at a tap. */
    const float *img = transposed ? rr->data : x->data, *grid = transposed ? x->data : rr->data;
    int ci = transposed ? t.co : t.c, cg = transposed ? t.c : t.co;
    float worst = 0, bworst = 0;
    for (int o = 0; o < cg; o++) {
        for (int c = 0; c < ci; c++)
            for (int i = 0; i < t.kh; i++)
                for (int j = 0; j < t.kw; j++) {
                    double s = 0;
                    for (int n = 0; n < t.n; n++)
                        for (int oy = 0; oy < t.h; oy++)
                            for (int ox = 0; ox < t.w; ox++) {
                                int iy = oy - 1 + i, jx = ox - 1 + j;
                                if (iy >= 0 && iy < t.h && jx >= 0 && jx < t.w)
                                    s += (double)img[((n * ci + c) * t.h + iy) * t.w + jx] *
                                         grid[((n * cg + o) * t.h + oy) * t.w + ox];
                            }
                    float got = w->grad[((o * ci + c) * t.kh + i) * t.kw + j];
                    worst = fmaxf(worst, fabsf(got - (float)s));
                }
    }
    for (int o = 0; o < t.co; o++) {
        double s = 0;
        for (int n = 0; n < t.n; n++)
            for (int p = 0; p < t.h * t.w; p++) s += rr->data[(n * t.co + o) * t.h * t.w + p];
        bworst = fmaxf(bworst, fabsf(b->grad[o] - (float)s));
    }
    is_close(worst, 0, 1e-3, 0, "%s: the weight gradient", name);
    is_close(bworst, 0, 1e-3, 0, "%s: the bias gradient", name);
    free(ref);
    ag_graph_free(&g);
    ag_params_free(&ps);
    ag_set_threads(1);
}

static void test_errors(void)
{
    static const err_case cases[] = {
        {AG_OP_CONV2D, {3, {3, 8, 8}}, {4, {4, 3, 3, 3}}, 0, {1, 1, 0, 0}, 0,
         "conv2d: the input must be 4-D [N, C, H, W], got [3, 8, 8]"},
        {AG_OP_CONV2D, {4, {2, 3, 8, 8}}, {2, {4, 27}}, 0, {1, 1, 0, 0}, 1,
         "conv2d: the weight must be 4-D [C_out, C_in, kH, kW], got [4, 27]"},
        {AG_OP_CONV2D, {4, {2, 3, 8, 8}}, {4, {4, 1, 3, 3}}, 0, {1, 1, 0, 0}, 1,
         "conv2d: input has 3 channels but the weight expects 1"},
        {AG_OP_CONV2D, {4, {2, 3, 8, 8}}, {4, {4, 3, 3, 3}}, 5, {1, 1, 0, 0}, 0,
         "conv2d: the bias has shape [5] but the weight has 4 output channels"},
        {AG_OP_CONV2D, {4, {1, 1, 4, 4}}, {4, {1, 1, 5, 5}}, 0, {1, 1, 0, 0}, 0,
         "conv2d: the 5x5 kernel is larger than the padded input, 4x4"},
        {AG_OP_CONV2D, {4, {1, 1, 4, 6}}, {4, {1, 1, 7, 3}}, 0, {1, 1, 1, 0}, 0,
         "conv2d: the 7x3 kernel is larger than the padded input, 6x6"},
        {AG_OP_CONV2D, {4, {1, 1, 4, 4}}, {4, {1, 1, 3, 3}}, 0, {1, 0, 0, 0}, 0,
         "conv2d: stride must be at least 1, got 0"},
        {AG_OP_CONV2D, {4, {1, 1, 4, 4}}, {4, {1, 1, 3, 3}}, 0, {1, 1, 0, -1}, 0,
         "conv2d: padding must be at least 0, got -1"},
        {AG_OP_CONV_TRANSPOSE2D, {4, {2, 3, 4, 4}}, {4, {1, 3, 4, 4}}, 0, {2, 2, 1, 1}, 1,
         "conv_transpose2d: input has 3 channels but the weight expects 1"},
        {AG_OP_CONV_TRANSPOSE2D, {4, {2, 3, 4, 4}}, {3, {3, 2, 4}}, 0, {2, 2, 1, 1}, 0,
         "conv_transpose2d: the weight must be 4-D [C_in, C_out, kH, kW], got [3, 2, 4]"},
        {AG_OP_CONV_TRANSPOSE2D, {4, {2, 3, 4, 4}}, {4, {3, 2, 4, 4}}, 3, {2, 2, 1, 1}, 0,
         "conv_transpose2d: the bias has shape [3] but the weight has 2 output channels"},
        {AG_OP_CONV_TRANSPOSE2D, {4, {2, 3, 4, 4}}, {4, {3, 2, 4, 4}}, 0,
         {2, 2, 1, 1, 2, 0}, 0,
         "conv_transpose2d: output_padding 2 must be smaller than the stride 2"},
        {AG_OP_CONV_TRANSPOSE2D, {4, {2, 3, 4, 4}}, {4, {3, 2, 4, 4}}, 0,
         {2, 2, 1, 1, 0, -1}, 0,
         "conv_transpose2d: output_padding must be at least 0, got -1"},
        {AG_OP_CONV_TRANSPOSE2D, {4, {1, 1, 1, 1}}, {4, {1, 1, 1, 1}}, 0, {1, 1, 1, 1}, 0,
         "conv_transpose2d: the output would be -1x-1: the padding 1x1 is too large for the "
         "1x1 input and 1x1 kernel"},
        {AG_OP_AVG_POOL2D, {2, {8, 8}}, {0}, 0, {2, 2}, 0,
         "avg_pool2d: the input must be 4-D [N, C, H, W], got [8, 8]"},
        {AG_OP_AVG_POOL2D, {4, {1, 1, 2, 5}}, {0}, 0, {3, 3}, 1,
         "avg_pool2d: the 3x3 kernel is larger than the 2x5 input"},
        {AG_OP_AVG_POOL2D, {4, {1, 1, 2, 5}}, {0}, 0, {0, 1}, 0,
         "avg_pool2d: the kernel size must be at least 1, got 0"},
        {AG_OP_AVG_POOL2D, {4, {1, 1, 2, 5}}, {0}, 0, {2, -1}, 0,
         "avg_pool2d: the stride must be at least 1, got -1"},
        {AG_OP_UPSAMPLE_NEAREST2D, {4, {1, 1, 2, 5}}, {0}, 0, {0}, 0,
         "upsample_nearest2d: the scale factor must be at least 1, got 0"},
        {AG_OP_UPSAMPLE_NEAREST2D, {3, {1, 2, 5}}, {0}, 0, {2}, 1,
         "upsample_nearest2d: the input must be 4-D [N, C, H, W], got [B, 2, 5]"},
    };
    for (size_t k = 0; k < AG_COUNTOF(cases); k++) {
        const err_case *c = &cases[k];
        fixture f;
        fx_init(&f, 1);
        ag_graph_set_loc(&f.g, (ag_loc){"net.yaml", 3, 5});
        ag_node *src[3];
        int nsrc = 0;
        src[nsrc++] = ag_input(&f.g, "x", c->x, c->batched);
        if (c->w.ndim) src[nsrc++] = ag_input(&f.g, "w", c->w, 0);
        if (c->bias) src[nsrc++] = ag_input(&f.g, "b", ag_shape1(c->bias), 0);
        ag_node *y = ag_new(&f.g, c->op, nsrc, src, NULL, c->ip);
        char want[512];
        snprintf(want, sizeof want, "net.yaml:3:5: %s", c->msg);
        is_str(y ? "(built)" : f.g.err.msg, want, "error: %s", c->msg);
        fx_free(&f);
    }
}

/* At 2 and 3 threads, two runs give the same bits (tests/threads.h): the output and the
 * input, weight and bias gradients of the DDPM's shapes at 14x14, whose unfolding,
 * folding and sgemms are spread over the pool.
 * (Unlike the element-wise ops, a convolution is not the same at every thread count:
 * its sgemms are cut where the thread count says, and OpenBLAS rounds a piece as it
 * blocks it; check_chunked holds each count to the references.) */
static ag_node *th_conv(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_conv2d(g, in[0], in[1], in[2], 1, 1);
}

static ag_node *th_convt(ag_graph *g, ag_node **in, void *ctx)
{
    return ag_conv_transpose2d(g, in[0], in[1], in[2], 2, 1, 0);
}

static void test_threads(void)
{
    static const struct {
        const char *what;
        th_build_fn build;
        ag_shape in[3];
    } cases[] = {
        {"conv2d [24, 32, 14, 14] -> 64, 3x3", th_conv,
         {{4, {24, 32, 14, 14}}, {4, {64, 32, 3, 3}}, {1, {64}}}},
        {"conv_transpose2d [24, 64, 7, 7] -> 32, 4x4 stride 2", th_convt,
         {{4, {24, 64, 7, 7}}, {4, {64, 32, 4, 4}}, {1, {32}}}},
    };
    for (size_t k = 0; k < AG_COUNTOF(cases); k++)
        for (int threads = 2; threads <= 3; threads++)
            ok(th_agree(threads, threads, cases[k].in, 3, -1, 1, cases[k].build, NULL),
               "%s at %d threads: two runs, the same output and gradients bit for bit",
               cases[k].what, threads);
}

int main(void)
{
    ag_set_threads(1);
    test_forward();
    test_builders();
    test_pool_forward();
    test_grad();
    test_golden();
    test_dynamic_batch();
    for (int threads = 1; threads <= 3; threads++) {
        check_chunked(0, threads);
        check_chunked(1, threads);
    }
    test_threads();
    test_errors();
    return tap_done();
}
