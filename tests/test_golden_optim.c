/* test_golden_optim.c — ten optimizer steps on a small MLP, against PyTorch, with and
 * without clip_grad_norm and clip_weights (clip_grad_norm_ and clamp_ around the step).
 *
 * Each tests/golden/optim_<run>.txt holds a Linear 6->5, tanh, Linear 5->3, sigmoid MLP
 * under BCE (mean): initial weights, a batch of 4, the optimizer's hyper-parameters and
 * groups, each step's lr per group, each step's loss and the final weights. We build
 * the same MLP on the engine, load the weights, take the same steps, and compare every
 * loss and final weight, |a - b| <= 1e-6 + 1e-5 |ref|.
 *
 * Every run is also interrupted after step 5: the state slab, the step count and the
 * weights go into a fresh optimizer, which must end bit for bit where the uninterrupted
 * run ends, as a resumed checkpoint must. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/graph.h"
#include "aigc/optim.h"
#include "golden.h"
#include "tap.h"

enum { NPARAM = 4, STEPS = 10, BATCH = 4, MAX_GROUPS = 4 };
static const double ATOL = 1e-6, RTOL = 1e-5;
static const char *const pnames[NPARAM] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};

typedef struct mlp {
    ag_params ps;
    rng r;
    ag_graph g;
    ag_node *x, *y, *loss;
    ag_bwplan *bw;
    int ngroups, members[MAX_GROUPS][NPARAM], nmembers[MAX_GROUPS];
    opt_group_spec groups[MAX_GROUPS];
} mlp;

/* The MLP with the golden initial weights and batch; NULL-free or a failed check. */
static int mlp_make(mlp *m, const gd_file *f)
{
    static const int shapes[NPARAM][2] = {{5, 6}, {5, 0}, {3, 5}, {3, 0}};
    ag_params_init(&m->ps);
    for (int k = 0; k < NPARAM; k++) {
        ag_shape s = shapes[k][1] ? ag_shape2(shapes[k][0], shapes[k][1]) : ag_shape1(shapes[k][0]);
        ag_params_add(&m->ps, pnames[k], s, (ag_loc){0});
    }
    ag_params_alloc(&m->ps);
    rng_seed(&m->r, 1);
    ag_graph *g = &m->g;
    ag_graph_init(g, &m->ps, &m->r);
    m->x = ag_input(g, "x", ag_shape2(0, 6), 1);
    m->y = ag_input(g, "y", ag_shape2(0, 3), 1);
    ag_node *h = ag_unary(g, AG_OP_TANH, ag_linear(g, m->x, ag_param(g, 0), ag_param(g, 1)));
    ag_node *p = ag_unary(g, AG_OP_SIGMOID, ag_linear(g, h, ag_param(g, 2), ag_param(g, 3)));
    m->loss = ag_loss(g, AG_OP_BCE, p, m->y, AG_RED_MEAN);
    ag_error err = {{0}};
    if (!m->loss) return ok(0, "the MLP builds: %s", g->err.msg), -1;
    m->bw = ag_backward_plan(g, m->loss, (int[]){0, 1, 2, 3}, NPARAM, &err);
    if (!m->bw || ag_graph_plan(g, BATCH, &err)) return ok(0, "the MLP plans: %s", err.msg), -1;

    const gd_entry *x = gd_get(f, "x"), *y = gd_get(f, "y");
    if (!x || !y || x->n != BATCH * 6 || y->n != BATCH * 3) return -1;
    gd_to_float(x, m->x->data);
    gd_to_float(y, m->y->data);
    for (int k = 0; k < NPARAM; k++) {
        char name[64];
        snprintf(name, sizeof name, "init.%s", pnames[k]);
        const gd_entry *e = gd_get(f, name);
        if (!e || e->n != ag_numel(&m->ps.p[k].shape)) return -1;
        gd_to_float(e, m->ps.p[k].data);
    }

    /* Groups as PyTorch's param_groups, each with its own weight decay. */
    const gd_entry *of = gd_get(f, "group_of"), *wd = gd_get(f, "group_wd");
    if (!of || !wd || of->n != NPARAM || wd->n > MAX_GROUPS) return -1;
    m->ngroups = (int)wd->n;
    for (int k = 0; k < NPARAM; k++) {
        int gi = (int)of->v[k];
        m->members[gi][m->nmembers[gi]++] = k;
    }
    for (int gi = 0; gi < m->ngroups; gi++)
        m->groups[gi] = (opt_group_spec){m->members[gi], m->nmembers[gi], 0, wd->v[gi]};
    return 0;
}

static void mlp_free(mlp *m)
{
    ag_graph_free(&m->g);
    ag_params_free(&m->ps);
}

/* Steps [from, to) (0-based), with the golden lrs; the losses go to loss[step]. */
static void run_steps(mlp *m, opt_optimizer *o, const gd_entry *lrs, int from, int to,
                      float *loss)
{
    for (int t = from; t < to; t++) {
        for (int gi = 0; gi < m->ngroups; gi++) opt_set_lr(o, gi, lrs->v[t * m->ngroups + gi]);
        ag_forward(&m->g, 0, m->g.n);
        loss[t] = m->loss->data[0];
        ag_backward(&m->g, m->bw);
        opt_step(o);
    }
}

static opt_hyper hyper_from(const gd_entry *h)
{
    return (opt_hyper){.lr = h->v[0], .weight_decay = h->v[1], .momentum = h->v[2],
                       .dampening = h->v[3], .nesterov = h->v[4] != 0, .beta1 = h->v[5],
                       .beta2 = h->v[6], .eps = h->v[7], .amsgrad = h->v[8] != 0,
                       .alpha = h->v[9], .centered = h->v[10] != 0, .clip_grad_norm = h->v[11],
                       .clip_weights = h->v[12]};
}

static void test_run(const char *run, opt_kind kind)
{
    char path[128];
    snprintf(path, sizeof path, "tests/golden/optim_%s.txt", run);
    gd_file f;
    if (gd_load(&f, path)) return;
    const gd_entry *he = gd_get(&f, "hyper"), *lrs = gd_get(&f, "lrs");
    mlp m = {0};
    if (!he || he->n != 13 || !lrs || mlp_make(&m, &f)) goto done;
    opt_hyper h = hyper_from(he);
    ag_error err = {{0}};
    if (!ok(opt_check(kind, &h, (ag_loc){0}, &err) == AG_OK, "%s: hyper-parameters pass", run))
        diag("%s", err.msg);
    if (!ok(lrs->n == STEPS * m.ngroups, "%s: an lr per group per step", run)) goto done;

    /* Keep the initial weights for the interrupted run. */
    size_t bytes = (size_t)m.ps.total * sizeof(float);
    float *init = ag_xmalloc(bytes);
    memcpy(init, m.ps.data, bytes);

    opt_optimizer o;
    if (!ok(opt_init(&o, kind, &h, &m.ps, m.groups, m.ngroups, (ag_loc){0}, &err) == AG_OK,
            "%s: optimizer made", run)) {
        diag("%s", err.msg);
        free(init);
        goto done;
    }
    float loss[STEPS];
    run_steps(&m, &o, lrs, 0, STEPS, loss);
    gd_check(loss, STEPS, gd_get(&f, "loss"), ATOL, RTOL, "%s: loss at each step", run);
    for (int k = 0; k < NPARAM; k++) {
        char name[64];
        snprintf(name, sizeof name, "final.%s", pnames[k]);
        gd_check(m.ps.p[k].data, (long)ag_numel(&m.ps.p[k].shape), gd_get(&f, name), ATOL, RTOL,
                 "%s: %s after %d steps", run, pnames[k], STEPS);
    }
    float *final = ag_xmalloc(bytes);
    memcpy(final, m.ps.data, bytes);
    opt_free(&o);

    /* Interrupted after step 5 and resumed from the saved state. */
    memcpy(m.ps.data, init, bytes);
    opt_init(&o, kind, &h, &m.ps, m.groups, m.ngroups, (ag_loc){0}, &err);
    run_steps(&m, &o, lrs, 0, STEPS / 2, loss);
    int64_t nstate = opt_state_floats(&o), step = o.step;
    float *state = ag_xmalloc((size_t)nstate * sizeof(float) + 1);
    float *weights = ag_xmalloc(bytes);
    if (nstate) memcpy(state, o.state, (size_t)nstate * sizeof(float));
    memcpy(weights, m.ps.data, bytes);
    opt_free(&o);
    memset(m.ps.data, 0, bytes);

    opt_init(&o, kind, &h, &m.ps, m.groups, m.ngroups, (ag_loc){0}, &err);
    ok(opt_state_floats(&o) == nstate, "%s: a new optimizer has the same state size", run);
    if (nstate) memcpy(o.state, state, (size_t)nstate * sizeof(float));
    o.step = step;
    memcpy(m.ps.data, weights, bytes);
    run_steps(&m, &o, lrs, STEPS / 2, STEPS, loss);
    ok(memcmp(m.ps.data, final, bytes) == 0, "%s: resumed after step %d, ends bit for bit the same",
       run, STEPS / 2);
    opt_free(&o);
    free(init);
    free(final);
    free(state);
    free(weights);
done:
    mlp_free(&m);
    gd_free(&f);
}

/* The layout promises of optim.h, on the two-group run's store. */
static void test_layout(void)
{
    gd_file f;
    if (gd_load(&f, "tests/golden/optim_adam_groups.txt")) return;
    mlp m = {0};
    if (mlp_make(&m, &f)) goto done;
    opt_hyper h = opt_defaults(OPT_ADAM);
    opt_optimizer o;
    ag_error err;
    opt_init(&o, OPT_ADAM, &h, &m.ps, m.groups, m.ngroups, (ag_loc){0}, &err);
    /* Group 0 is fc1.weight [5, 6], fc1.bias and fc2.bias, group 1 fc2.weight [3, 5]. */
    ok(o.ngroups == 2 && o.groups[0].nranges == 3 && o.groups[1].nranges == 1,
       "each parameter of a group is a range");
    ok(o.groups[0].ranges[0].n == 30 && o.groups[0].ranges[1].state == 30 &&
           o.groups[0].ranges[2].state == 35 && o.groups[1].ranges[0].state == 38,
       "state follows the groups' order");
    ok(o.groups[0].ranges[0].rows == 5 && o.groups[0].ranges[1].rows == 0 && o.groups[1].ranges[0].rows == 3,
       "a weight's range knows its rows, a bias's has none");
    ok(o.covered == 53 && opt_state_floats(&o) == 2 * 53, "adam keeps two floats per element");
    opt_free(&o);

    h.amsgrad = 1;
    opt_init(&o, OPT_ADAM, &h, &m.ps, m.groups, m.ngroups, (ag_loc){0}, &err);
    ok(opt_state_floats(&o) == 3 * 53, "amsgrad keeps three");
    opt_free(&o);
    h = opt_defaults(OPT_SGD);
    opt_init(&o, OPT_SGD, &h, &m.ps, m.groups, m.ngroups, (ag_loc){0}, &err);
    ok(opt_state_floats(&o) == 0 && o.state == NULL, "sgd without momentum keeps none");
    /* on_nan: skip looks at exactly the covered elements, in every range of every group. */
    int64_t last = o.groups[1].ranges[0].offset + o.groups[1].ranges[0].n - 1;
    memset(m.ps.grad, 0, (size_t)m.ps.total * sizeof *m.ps.grad);
    ok(opt_grads_finite(&o) && opt_params_finite(&o), "finite gradients and parameters are finite");
    m.ps.grad[last] = NAN;
    ok(!opt_grads_finite(&o), "a NaN in the last covered gradient is seen");
    m.ps.grad[last] = -INFINITY;
    ok(!opt_grads_finite(&o) && opt_params_finite(&o), "an infinite gradient is seen, in the gradients only");
    m.ps.grad[last] = 0;
    float keep = m.ps.data[0];
    m.ps.data[0] = INFINITY;
    ok(!opt_params_finite(&o) && opt_grads_finite(&o), "an infinite parameter is seen");
    m.ps.data[0] = keep;
    opt_free(&o);

    opt_group_spec twice[] = {{(int[]){0, 1}, 2, 1e-3, 0}, {(int[]){1}, 1, 1e-3, 0}};
    int rc = opt_init(&o, OPT_ADAM, &h, &m.ps, twice, 2, (ag_loc){"s.yaml", 4, 7}, &err);
    ok(rc == AG_ERR, "a parameter in two groups is an error");
    is_str(err.msg,
           "s.yaml:4:7: adam: parameter fc1.bias is listed twice (each may appear once, in "
           "one group)",
           "its message names the parameter");
done:
    mlp_free(&m);
    gd_free(&f);
}

static void test_names_and_checks(void)
{
    ok(opt_kind_by_name("adamw") == OPT_ADAMW && opt_kind_by_name("rmsprop") == OPT_RMSPROP &&
           opt_kind_by_name("adagrad") == OPT_COUNT,
       "optimizers by name");
    opt_hyper r = opt_defaults(OPT_RMSPROP);
    ok(r.lr == 1e-2 && r.alpha == 0.99 && r.eps == 1e-8 && r.momentum == 0 && !r.centered &&
           r.weight_decay == 0 && r.clip_weights == 0 && r.clip_grad_norm == 0,
       "rmsprop's defaults are PyTorch's, and no clipping");
    ok(opt_field_by_name(OPT_RMSPROP, "betas") == NULL && opt_field_by_name(OPT_RMSPROP, "momentum") &&
           opt_field_by_name(OPT_SGD, "clip_weights") && opt_field_by_name(OPT_ADAMW, "clip_grad_norm"),
       "rmsprop has momentum and no betas; every kind clips");
    ok(opt_field_by_name(OPT_SGD, "momentum") != NULL &&
           opt_field_by_name(OPT_ADAM, "momentum") == NULL,
       "momentum is sgd's, not adam's");
    opt_hyper h = opt_defaults(OPT_ADAMW);
    ok(h.weight_decay == 1e-2 && h.beta2 == 0.999 && h.eps == 1e-8, "adamw's defaults");

    ag_error err;
    ag_loc at = {"spec.yaml", 12, 3};
    h.beta1 = 1;
    ok(opt_check(OPT_ADAMW, &h, at, &err) == AG_ERR, "beta1 = 1 is refused");
    is_str(err.msg, "spec.yaml:12:3: adamw: beta1 must be in [0, 1), got 1",
           "its message states the range");
    h = opt_defaults(OPT_SGD);
    h.lr = -0.1;
    opt_check(OPT_SGD, &h, at, &err);
    is_str(err.msg, "spec.yaml:12:3: sgd: lr must be in [0, 1000], got -0.1",
           "a negative lr is refused");
    h = opt_defaults(OPT_SGD);
    h.nesterov = 1;
    opt_check(OPT_SGD, &h, at, &err);
    is_str(err.msg,
           "spec.yaml:12:3: sgd: nesterov momentum needs momentum > 0 and dampening 0 (got "
           "momentum 0, dampening 0)",
           "nesterov without momentum is refused");
    const opt_field *eps = opt_field_by_name(OPT_ADAM, "eps");
    ok(opt_check_value(OPT_ADAM, eps, 1e-8, at, &err) == AG_OK, "one value in range");
    opt_check_value(OPT_ADAM, eps, -1, (ag_loc){"spec.yaml", 9, 28}, &err);
    is_str(err.msg, "spec.yaml:9:28: adam: eps must be a finite number >= 0, got -1", "one value out of range, at its place");
    opt_check_value(OPT_RMSPROP, opt_field_by_name(OPT_RMSPROP, "alpha"), 1.5, at, &err);
    is_str(err.msg, "spec.yaml:12:3: rmsprop: alpha must be in [0, 1], got 1.5", "rmsprop's alpha is in [0, 1]");
    opt_check_value(OPT_SGD, opt_field_by_name(OPT_SGD, "clip_weights"), -0.01, at, &err);
    is_str(err.msg, "spec.yaml:12:3: sgd: clip_weights must be a finite number >= 0, got -0.01",
           "a negative clip is refused");
}

int main(void)
{
    static const struct {
        const char *run;
        opt_kind kind;
    } runs[] = {
        {"adam", OPT_ADAM},
        {"adam_amsgrad_wd", OPT_ADAM},
        {"adamw", OPT_ADAMW},
        {"sgd_nesterov", OPT_SGD},
        {"sgd_dampening", OPT_SGD},
        {"sgd_plain", OPT_SGD},
        {"adam_groups", OPT_ADAM},
        {"rmsprop", OPT_RMSPROP},
        {"rmsprop_centered_momentum", OPT_RMSPROP},
        {"rmsprop_momentum", OPT_RMSPROP},
        {"rmsprop_clip_weights", OPT_RMSPROP},
        {"adam_clip_grad_norm", OPT_ADAM},
        {"sgd_clip_both", OPT_SGD},
    };
    for (size_t k = 0; k < AG_COUNTOF(runs); k++) test_run(runs[k].run, runs[k].kind);
    test_layout();
    test_names_and_checks();
    return tap_done();
}
