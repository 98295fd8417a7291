/* test_spectral.c — spectral normalization (runtime/ops/spectral.c): finite-difference
 * gradients, and a Linear and a Conv2d under torch.nn.utils.spectral_norm against
 * PyTorch (tests/golden/spectral_norm.txt): the power iteration of each training
 * forward, the outputs, the gradients with u and v held constant, and an evaluation
 * forward that leaves the buffers alone. PyTorch's initial u and v are in the file. */
#include <math.h>
#include <string.h>

#include "aigc/graph.h"
#include "golden.h"
#include "gradcheck.h"
#include "tap.h"

static const double ATOL = 1e-5, RTOL = 1e-4;

/* In evaluation u and v are constants, so the output is a function of W alone. */
static ag_node *build_sn(ag_graph *g, ag_node **in, void *ctx)
{
    g->training = 0;
    return ag_spectral_norm(g, in[0], in[1], in[2], 1e-12f);
}

/* Weights of one sign and positive u, v keep sigma = u . (W v) away from 0, where
 * W / sigma would be too steep for a finite difference. */
static void test_gradcheck(void)
{
    gc_input mat[3] = {{ag_shape2(4, 5), -0.2f, 1, 0, 0}, {ag_shape1(4), 0.2f, 1, 0, 1},
                       {ag_shape1(5), 0.2f, 1, 0, 1}};
    gc_check("spectral_norm of a [4, 5] weight", 3, mat, build_sn, NULL);
    gc_input conv[3] = {{ag_shape4(3, 2, 3, 3), -0.2f, 1, 0, 0}, {ag_shape1(3), 0.2f, 1, 0, 1},
                        {ag_shape1(18), 0.2f, 1, 0, 1}};
    gc_check("spectral_norm of a [3, 2, 3, 3] weight (rows of 18)", 3, conv, build_sn, NULL);
}

static ag_shape shape_of(const gd_entry *e)
{
    ag_shape s = {.ndim = e->ndim};
    for (int k = 0; k < e->ndim; k++) s.d[k] = e->d[k];
    return s;
}

static const gd_entry *entry(const gd_file *f, const char *label, const char *what)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", label, what);
    return gd_get(f, key);
}

/* label's layer: y = layer(x, spectral_norm(W, u, v), b), against PyTorch's. */
static void test_golden(const gd_file *f, const char *label, int conv)
{
    const gd_entry *ew = entry(f, label, "weight"), *eb = entry(f, label, "bias"), *eu = entry(f, label, "u0"),
                   *ev = entry(f, label, "v0"), *ex = entry(f, label, "x"), *er = entry(f, label, "r");
    if (!ew || !eb || !eu || !ev || !ex || !er) return;
    ag_params ps;
    ag_params_init(&ps);
    int iw = ag_params_add(&ps, "weight_orig", shape_of(ew), (ag_loc){0});
    int ib = ag_params_add(&ps, "bias", shape_of(eb), (ag_loc){0});
    int iu = ag_params_add(&ps, "weight_u", shape_of(eu), (ag_loc){0});
    int iv = ag_params_add(&ps, "weight_v", shape_of(ev), (ag_loc){0});
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 1);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *x = ag_input(&g, "x", shape_of(ex), 0), *rw = ag_input(&g, "r", shape_of(er), 0);
    ag_node *w = ag_spectral_norm(&g, ag_param(&g, iw), ag_param(&g, iu), ag_param(&g, iv), 1e-12f);
    ag_node *y = conv ? ag_conv2d(&g, x, w, ag_param(&g, ib), 1, 0) : ag_linear(&g, x, w, ag_param(&g, ib));
    ag_node *loss = ag_sum(&g, ag_binary(&g, AG_OP_MUL, y, rw));
    ag_error err = {{0}};
    ag_bwplan *bw = loss ? ag_backward_plan(&g, loss, (int[]){iw, ib}, 2, &err) : NULL;
    if (!ok(bw && ag_graph_plan(&g, 1, &err) == AG_OK, "%s: builds", label)) {
        diag("%s%s", g.err.msg, err.msg);
        goto done;
    }
    gd_to_float(ew, ps.p[iw].data);
    gd_to_float(eb, ps.p[ib].data);
    gd_to_float(eu, ps.p[iu].data);
    gd_to_float(ev, ps.p[iv].data);
    gd_to_float(ex, x->data);
    gd_to_float(er, rw->data);
    long nu = eu->n, nv = ev->n, ny = (long)ag_numel(&y->shape);

    ag_forward(&g, 0, g.n);
    gd_check(ps.p[iu].data, nu, entry(f, label, "u1"), ATOL, RTOL, "%s: u after a training forward", label);
    gd_check(ps.p[iv].data, nv, entry(f, label, "v1"), ATOL, RTOL, "%s: v after it", label);
    gd_check(y->data, ny, entry(f, label, "y1"), ATOL, RTOL, "%s: its output, W / sigma applied", label);
    /* The backward reads this forward's u and v from the node: a second forward of the
     * same layer before it (the model called again) must not change the gradient. */
    float keep_u[64];
    memcpy(keep_u, ps.p[iu].data, (size_t)nu * sizeof *keep_u);
    ps.p[iu].data[0] += 1;
    ag_backward(&g, bw);
    memcpy(ps.p[iu].data, keep_u, (size_t)nu * sizeof *keep_u);
    gd_check(ps.p[iw].grad, ew->n, entry(f, label, "grad_weight"), ATOL, RTOL,
             "%s: the weight's gradient, u and v held constant", label);
    gd_check(ps.p[ib].grad, eb->n, entry(f, label, "grad_bias"), ATOL, RTOL, "%s: the bias's", label);

    ag_forward(&g, 0, g.n);
    gd_check(y->data, ny, entry(f, label, "y2"), ATOL, RTOL, "%s: a second training forward", label);
    gd_check(ps.p[iu].data, nu, entry(f, label, "u2"), ATOL, RTOL, "%s: u after the second iteration", label);
    g.training = 0;
    float u2[64];
    memcpy(u2, ps.p[iu].data, (size_t)nu * sizeof *u2);
    ag_forward(&g, 0, g.n);
    gd_check(y->data, ny, entry(f, label, "y_eval"), ATOL, RTOL, "%s: an evaluation forward", label);
    ok(memcmp(u2, ps.p[iu].data, (size_t)nu * sizeof *u2) == 0, "%s: evaluation leaves u as it was", label);
done:
    ag_graph_free(&g);
    ag_params_free(&ps);
}

int main(void)
{
    test_gradcheck();
    gd_file f;
    if (gd_load(&f, "tests/golden/spectral_norm.txt") == 0) {
        test_golden(&f, "linear", 0);
        test_golden(&f, "conv", 1);
        gd_free(&f);
    }
    return tap_done();
}
