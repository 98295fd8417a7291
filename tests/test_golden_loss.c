/* test_golden_loss.c — every loss op, each reduction, value and gradients, against
 * PyTorch's (tests/golden/loss.txt), including bce at p = 0 and p = 1 where PyTorch
 * clamps the log at -100 and the gradient's denominator at 1e-12.
 *
 * Per loss L the inputs are L.a and L.b; a is always a parameter (it takes a gradient),
 * b is one when PyTorch gives it a gradient too, else a plain input. One graph holds
 * the three reductions; each reduced value has its own backward plan. */
#include "aigc/graph.h"
#include "golden.h"
#include "tap.h"

static const double ATOL = 1e-6, RTOL = 1e-5;

static const struct {
    const char *label;
    ag_op op;
    int b_grad;     /* b takes a gradient in PyTorch */
} cases[] = {
    {"bce", AG_OP_BCE, 0},
    {"bce_with_logits", AG_OP_BCE_LOGITS, 0},
    {"mse", AG_OP_MSE, 1},
    {"l1", AG_OP_L1, 1},
    {"cross_entropy", AG_OP_CROSS_ENTROPY, 0},
    {"kl_normal", AG_OP_KL_NORMAL, 1},
};

static const char *const red_names[] = {[AG_RED_MEAN] = "mean", [AG_RED_SUM] = "sum",
                                        [AG_RED_NONE] = "none"};

static ag_shape shape_of(const gd_entry *e)
{
    ag_shape s = {.ndim = e->ndim};
    for (int k = 0; k < e->ndim; k++) s.d[k] = e->d[k];
    return s;
}

static void test_loss(const gd_file *f, const char *label, ag_op op, int b_grad)
{
    char name[128];
    snprintf(name, sizeof name, "%s.a", label);
    const gd_entry *ea = gd_get(f, name);
    snprintf(name, sizeof name, "%s.b", label);
    const gd_entry *eb = gd_get(f, name);
    if (!ea || !eb) return;

    ag_params ps;
    ag_params_init(&ps);
    int ia = ag_params_add(&ps, "a", shape_of(ea), (ag_loc){0});
    int ib = b_grad ? ag_params_add(&ps, "b", shape_of(eb), (ag_loc){0}) : -1;
    ag_params_alloc(&ps);
    rng r;
    rng_seed(&r, 1);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *a = ag_param(&g, ia);
    ag_node *b = b_grad ? ag_param(&g, ib) : ag_input(&g, "b", shape_of(eb), 0);
    ag_node *out[3];
    for (int red = 0; red < 3; red++) out[red] = ag_loss(&g, op, a, b, (ag_reduction)red);
    int params[2] = {ia, ib};
    ag_error err = {{0}};
    ag_bwplan *bw[2] = {0};
    int good = out[0] && out[1] && out[2];
    for (int red = 0; good && red < 2; red++) {
        bw[red] = ag_backward_plan(&g, out[red], params, b_grad ? 2 : 1, &err);
        good = bw[red] != NULL;
    }
    if (!ok(good && ag_graph_plan(&g, 1, &err) == AG_OK, "%s: builds", label)) {
        diag("%s%s", g.err.msg, err.msg);
        goto done;
    }
    gd_to_float(ea, a->data);
    gd_to_float(eb, b->data);
    if (!ok(ag_forward(&g, 0, g.n) == AG_OK, "%s: forward runs", label)) {
        diag("%s", g.err.msg);
        goto done;
    }
    for (int red = 0; red < 3; red++) {
        snprintf(name, sizeof name, "%s.%s", label, red_names[red]);
        gd_check(out[red]->data, (long)ag_numel(&out[red]->shape), gd_get(f, name), ATOL, RTOL,
                 "%s", name);
    }
    for (int red = 0; red < 2; red++) {
        ag_backward(&g, bw[red]);
        snprintf(name, sizeof name, "%s.%s.grad_a", label, red_names[red]);
        gd_check(a->grad, ea->n, gd_get(f, name), ATOL, RTOL, "%s", name);
        if (b_grad) {
            snprintf(name, sizeof name, "%s.%s.grad_b", label, red_names[red]);
            gd_check(b->grad, eb->n, gd_get(f, name), ATOL, RTOL, "%s", name);
        }
    }
done:
    ag_graph_free(&g);
    ag_params_free(&ps);
}

int main(void)
{
    gd_file f;
    if (gd_load(&f, "tests/golden/loss.txt")) return tap_done();
    for (size_t k = 0; k < AG_COUNTOF(cases); k++)
        test_loss(&f, cases[k].label, cases[k].op, cases[k].b_grad);
    gd_free(&f);
    return tap_done();
}
