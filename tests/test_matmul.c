/* test_matmul.c — the BLAS path agrees with the naive reference: ag_sgemm in every
 * transpose case with awkward sizes, strides and scalars, on the backend AIGC_BACKEND
 * names and on each one built in, and the matmul op on batched operands. */
#include <stdlib.h>

#include "aigc/blas.h"
#include "aigc/graph.h"
#include "tap.h"

static float max_abs_diff(const float *a, const float *b, int64_t n)
{
    float worst = 0;
    for (int64_t k = 0; k < n; k++) worst = fmaxf(worst, fabsf(a[k] - b[k]));
    return worst;
}

static float *random_floats(rng *r, int64_t n)
{
    float *x = ag_xmalloc((size_t)n * sizeof *x);
    rng_fill_uniform(r, x, n, -1, 1);
    return x;
}

/* ----------------------------------------------------------------- sgemm -- */

/* op(A) [m, k], op(B) [k, n], every matrix stored with `pad` unused floats at the end of
 * each row, and a C that already holds values for beta to scale. */
static void check_sgemm(rng *r, int ta, int tb, int m, int n, int k, float alpha, float beta,
                        int pad)
{
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    int64_t na = (int64_t)(ta ? k : m) * lda, nb = (int64_t)(tb ? n : k) * ldb,
            nc = (int64_t)m * ldc;
    float *a = random_floats(r, na), *b = random_floats(r, nb), *c = random_floats(r, nc);
    float *want = ag_xmalloc((size_t)nc * sizeof *want);
    memcpy(want, c, (size_t)nc * sizeof *c);
    ag_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    ag_sgemm_naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc);
    is_close(max_abs_diff(c, want, nc), 0, 1e-4, 0,
             "sgemm ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g pad=%d", ta, tb, m, n, k, alpha,
             beta, pad);
    free(a);
    free(b);
    free(c);
    free(want);
}

static void test_sgemm(void)
{
    rng r;
    rng_seed(&r, 7);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_sgemm(&r, ta, tb, 13, 7, 29, 1, 0, 0);
            check_sgemm(&r, ta, tb, 31, 17, 5, 0.7f, -0.3f, 3);
            check_sgemm(&r, ta, tb, 1, 33, 65, -1.5f, 1, 1);
        }
}

/* The backend in use is the one the environment names (make test runs this program once
 * per backend), a name is checked, and every backend built in agrees with the reference. */
static void test_backends(void)
{
    const char *env = getenv("AIGC_BACKEND");
    bk_backend first = bk_current();
    if (env && *env)
        is_str(bk_name(first), env, "the backend in use is AIGC_BACKEND's");
    else
        is_str(bk_name(first), bk_built(BK_ONEDNN) ? "onednn" : "openblas",
               "without AIGC_BACKEND: oneDNN when built in");
    ag_error err;
    ok(bk_select("mkl", &err) == AG_ERR && bk_current() == first, "an unknown backend is refused");
    is_str(err.msg, "unknown backend 'mkl' (openblas or onednn)", "... with the names it takes");
    if (!bk_built(BK_ONEDNN)) {
        ok(bk_select("onednn", &err) == AG_ERR, "onednn is refused by a build without it");
        is_str(err.msg, "backend 'onednn' is not in this build (its library was not found when it was built)",
               "... saying why");
    }
    rng r;
    rng_seed(&r, 11);
    for (int b = 0; b < BK_COUNT; b++) {
        if (!bk_built((bk_backend)b)) continue;
        ok(bk_select(bk_name((bk_backend)b), &err) == AG_OK && bk_current() == (bk_backend)b,
           "%s selected", bk_name((bk_backend)b));
        check_sgemm(&r, 1, 0, 40, 400, 64, 1, 0, 0);
        check_sgemm(&r, 0, 1, 64, 33, 100, 0.5f, 1, 2);
    }
    ok(bk_select(bk_name(first), &err) == AG_OK, "back to %s", bk_name(first));
}

/* A NaN in C must not survive beta = 0, in either implementation. */
static void test_sgemm_beta_zero(void)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4], cn[4];
    for (int k = 0; k < 4; k++) c[k] = cn[k] = NAN;
    ag_sgemm(0, 0, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2);
    ag_sgemm_naive(0, 0, 2, 2, 2, 1, a, 2, b, 2, 0, cn, 2);
    ok(c[3] == 4 && cn[3] == 4 && max_abs_diff(c, a, 4) == 0 && max_abs_diff(cn, a, 4) == 0,
       "beta = 0 overwrites a NaN in C");
}

/* ------------------------------------------------------------- matmul op -- */

typedef struct mm_case {
    ag_shape a, b;
    int ta, tb;
} mm_case;

/* The op's output, group by group, against ag_sgemm_naive on the same slices. */
static void check_matmul_op(const mm_case *c)
{
    rng r;
    rng_seed(&r, 11);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *a = ag_input(&g, "a", c->a, 0), *b = ag_input(&g, "b", c->b, 0);
    ag_node *y = ag_matmul(&g, a, b, c->ta, c->tb);
    char sa[64], sb[64];
    ag_shape_str(&c->a, 0, sa, sizeof sa);
    ag_shape_str(&c->b, 0, sb, sizeof sb);
    ag_error err;
    if (!y || ag_graph_plan(&g, 1, &err) != AG_OK) {
        ok(0, "matmul %s%s @ %s%s builds: %s", sa, c->ta ? "^T" : "", sb, c->tb ? "^T" : "",
           y ? err.msg : g.err.msg);
        ag_graph_free(&g);
        ag_params_free(&ps);
        return;
    }
    rng_fill_uniform(&r, a->data, ag_numel(&a->shape), -1, 1);
    rng_fill_uniform(&r, b->data, ag_numel(&b->shape), -1, 1);
    ag_forward(&g, 0, g.n);

    int ra = c->a.ndim, rb = c->b.ndim;
    int m = c->a.d[ra - (c->ta ? 1 : 2)], k = c->a.d[ra - (c->ta ? 2 : 1)];
    int n = c->b.d[rb - (c->tb ? 2 : 1)];
    int64_t groups = ag_numel(&c->a) / ((int64_t)m * k);
    int64_t nc = groups * m * n;
    float *want = ag_xmalloc((size_t)nc * sizeof *want);
    for (int64_t t = 0; t < groups; t++)
        ag_sgemm_naive(c->ta, c->tb, m, n, k, 1, a->data + t * m * k, c->a.d[ra - 1],
                       b->data + (rb == 2 ? 0 : t * k * n), c->b.d[rb - 1], 0,
                       want + t * m * n, n);
    int shape_ok = y->shape.ndim == ra && y->shape.d[ra - 2] == m && y->shape.d[ra - 1] == n;
    float d = max_abs_diff(y->data, want, nc);
    ok(shape_ok && d < 1e-4f, "matmul %s%s @ %s%s matches the naive loop (max diff %.2g)", sa,
       c->ta ? "^T" : "", sb, c->tb ? "^T" : "", d);
    free(want);
    ag_graph_free(&g);
    ag_params_free(&ps);
}

static void test_matmul_op(void)
{
    const mm_case cases[] = {
        {ag_shape2(5, 7), ag_shape2(7, 3), 0, 0},
        {ag_shape3(4, 5, 7), ag_shape2(7, 3), 0, 0},
        {ag_shape3(4, 5, 7), ag_shape2(3, 7), 0, 1},
        {ag_shape3(4, 7, 5), ag_shape2(7, 3), 1, 0},
        {ag_shape3(4, 7, 5), ag_shape2(3, 7), 1, 1},
        {ag_shape3(4, 5, 7), ag_shape3(4, 7, 3), 0, 0},
        {ag_shape3(4, 7, 5), ag_shape3(4, 3, 7), 1, 1},
        {ag_shape4(2, 3, 5, 7), ag_shape2(7, 6), 0, 0},
        {ag_shape4(2, 3, 7, 5), ag_shape2(6, 7), 1, 1},
        {ag_shape4(2, 3, 5, 7), ag_shape4(2, 3, 7, 6), 0, 0},
        {ag_shape4(2, 3, 5, 7), ag_shape4(2, 3, 6, 7), 0, 1},
        {ag_shape4(2, 3, 7, 5), ag_shape4(2, 3, 7, 6), 1, 0},
    };
    for (size_t k = 0; k < AG_COUNTOF(cases); k++) check_matmul_op(&cases[k]);
}

/* A batched left operand follows the batch; the shared right operand does not. */
static void test_matmul_batched_leaf(void)
{
    rng r;
    rng_seed(&r, 5);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", ag_shape3(0, 5, 7), 1);
    ag_node *w = ag_input(&g, "w", ag_shape2(7, 3), 0);
    ag_node *y = ag_matmul(&g, x, w, 0, 0);
    ag_error err;
    if (!y || ag_graph_plan(&g, 4, &err) != AG_OK) {
        ok(0, "batched matmul builds: %s", y ? err.msg : g.err.msg);
        ag_graph_free(&g);
        ag_params_free(&ps);
        return;
    }
    ag_graph_set_batch(&g, 3);
    rng_fill_uniform(&r, x->data, 3 * 5 * 7, -1, 1);
    rng_fill_uniform(&r, w->data, 7 * 3, -1, 1);
    ag_forward(&g, 0, g.n);
    float want[3 * 5 * 3];
    ag_sgemm_naive(0, 0, 15, 3, 7, 1, x->data, 7, w->data, 3, 0, want, 3);
    char buf[64];
    is_str(ag_shape_str(&y->shape, y->batched, buf, sizeof buf), "[B, 5, 3]",
           "[B, 5, 7] @ [7, 3] is batched");
    ok(y->shape.d[0] == 3, "its dim 0 follows the batch");
    is_close(max_abs_diff(y->data, want, 45), 0, 1e-5, 0, "and it matches at batch 3 of 4");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

/* Mismatched operands are refused when the graph is built, with the sizes named. */
static void test_matmul_errors(void)
{
    rng r;
    rng_seed(&r, 5);
    ag_params ps;
    ag_params_init(&ps);
    ag_params_alloc(&ps);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_graph_set_loc(&g, (ag_loc){"specs/t.yaml", 4, 9});
    ag_node *a = ag_input(&g, "a", ag_shape3(2, 5, 7), 0);
    ok(!ag_matmul(&g, a, ag_input(&g, "b", ag_shape2(6, 3), 0), 0, 0), "inner sizes differ");
    is_str(g.err.msg,
           "specs/t.yaml:4:9: matmul: [2, 5, 7] @ [6, 3]: the left operand has 7 columns but "
           "the right one has 6 rows", "the message names both shapes and sizes");
    ok(!ag_matmul(&g, a, ag_input(&g, "b", ag_shape2(6, 3), 0), 1, 1), "transposed too");
    is_str(g.err.msg,
           "specs/t.yaml:4:9: matmul: [2, 5, 7]^T @ [6, 3]^T: the left operand has 5 columns "
           "but the right one has 3 rows", "the message marks the transposes");
    ok(!ag_matmul(&g, a, ag_input(&g, "b", ag_shape3(3, 7, 2), 0), 0, 0), "batch dims differ");
    is_str(g.err.msg,
           "specs/t.yaml:4:9: matmul: the leading dimensions of [2, 5, 7] and [3, 7, 2] differ",
           "the message names both shapes");
    ok(!ag_matmul(&g, ag_input(&g, "v", ag_shape1(7), 0), a, 0, 0), "a 1-D operand");
    is_str(g.err.msg,
           "specs/t.yaml:4:9: matmul: both operands need 2 or more dimensions, got [7] @ [2, 5, 7]",
           "the message says why");
    ag_graph_free(&g);
    ag_params_free(&ps);
}

int main(void)
{
    ag_set_threads(1);
    test_backends();
    test_sgemm();
    test_sgemm_beta_zero();
    test_matmul_op();
    test_matmul_batched_leaf();
    test_matmul_errors();
    return tap_done();
}
