/* layers.c — the layer table: what a stack entry or a graph-model call can name. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aigc/init.h"
#include "aigc/suggest.h"
#include "eval.h"

/* -------------------------------------------------------------- ranges -- */

static float clampf(double v) { return (float)(isnan(v) ? 0 : v); }

/* The range of an increasing function f on [lo, hi]. */
#define MONOTONE_RANGE(fname, expr)                                                    \
    static void fname(const double *args, float *lo, float *hi)                       \
    {                                                                                 \
        double x = *lo;                                                               \
        *lo = clampf(expr);                                                           \
        x = *hi;                                                                      \
        *hi = clampf(expr);                                                           \
    }

MONOTONE_RANGE(range_relu, x > 0 ? x : 0)
MONOTONE_RANGE(range_leaky, x > 0 ? x : x * args[0])
MONOTONE_RANGE(range_elu, x > 0 ? x : args[0] * expm1(x))
MONOTONE_RANGE(range_tanh, tanh(x))
MONOTONE_RANGE(range_sigmoid, 1 / (1 + exp(-x)))
MONOTONE_RANGE(range_softplus, x * args[0] > args[1] ? x : log1p(exp(args[0] * x)) / args[0])

static void range_same(const double *args, float *lo, float *hi) {}

/* silu and gelu dip below zero by a known amount, then grow like x. */
static void range_silu(const double *args, float *lo, float *hi)
{
    *lo = -0.2785f;
    *hi = *hi > 0 ? *hi : 0;
}

static void range_gelu(const double *args, float *lo, float *hi)
{
    *lo = -0.1700f;
    *hi = *hi > 0 ? *hi : 0;
}

/* Kept values are scaled by 1 / (1 - p); dropped ones are 0. */
static void range_dropout(const double *args, float *lo, float *hi)
{
    double s = 1 / (1 - args[0]);
    *lo = (float)fmin(0, *lo * s);
    *hi = (float)fmax(0, *hi * s);
}

/* -------------------------------------------------------------- linear -- */

static int linear_declare(ev_ctx *c, ly_slot *s, ag_node *x, const char *prefix, ag_error *err)
{
    if (x->shape.ndim < 1)
        return ag_errorf(err, s->loc, "linear: the input is a single number; it needs a feature dimension");
    int in = x->shape.d[x->shape.ndim - 1], out = (int)s->args[0];
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    s->param[s->nparam++] = ag_params_add(&c->p->params, name, ag_shape2(out, in), s->loc);
    if (s->args[1] != 0) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        s->param[s->nparam++] = ag_params_add(&c->p->params, name, ag_shape1(out), s->loc);
    }
    s->params = (int64_t)in * out + (s->args[1] != 0 ? out : 0);
    s->flops = 2 * (int64_t)in * out + (s->args[1] != 0 ? out : 0);
    return AG_OK;
}

static ag_node *linear_apply(ev_ctx *c, const ly_slot *s, ag_node *x)
{
    ag_node *w = ag_param(c->g, s->param[0]);
    ag_node *b = s->nparam > 1 ? ag_param(c->g, s->param[1]) : NULL;
    return ag_linear(c->g, x, w, b);
}

static void linear_init(const ly_slot *s, ag_params *ps, rng *r)
{
    const ag_parameter *w = &ps->p[s->param[0]];
    init_linear(r, w->data, s->nparam > 1 ? ps->p[s->param[1]].data : NULL, w->shape.d[1],
                w->shape.d[0]);
}

/* --------------------------------------------------------- activations -- */

#define ACT_APPLY(fname, call)                                                         \
    static ag_node *fname(ev_ctx *c, const ly_slot *s, ag_node *x) { return call; }

ACT_APPLY(relu_apply, ag_unary(c->g, AG_OP_RELU, x))
ACT_APPLY(leaky_apply, ag_leaky_relu(c->g, x, (float)s->args[0]))
ACT_APPLY(elu_apply, ag_elu(c->g, x, (float)s->args[0]))
ACT_APPLY(tanh_apply, ag_unary(c->g, AG_OP_TANH, x))
ACT_APPLY(sigmoid_apply, ag_unary(c->g, AG_OP_SIGMOID, x))
ACT_APPLY(softplus_apply, ag_softplus(c->g, x, (float)s->args[0], (float)s->args[1]))
ACT_APPLY(silu_apply, ag_unary(c->g, AG_OP_SILU, x))
ACT_APPLY(gelu_apply, ag_unary(c->g, AG_OP_GELU, x))
ACT_APPLY(dropout_apply, ag_dropout(c->g, x, (float)s->args[0]))
ACT_APPLY(flatten_apply, ag_flatten(c->g, x))

/* ---------------------------------------------------------------- table -- */

static const ly_def layers[] = {
    {"linear", 2, 1, {"out", "bias"}, {0, 1}, {1, 0}, {1 << 24, 1}, linear_declare,
     linear_apply, NULL, linear_init},
    {"relu", 0, 0, {0}, {0}, {0}, {0}, NULL, relu_apply, range_relu, NULL},
    {"leaky_relu", 1, 0, {"slope"}, {0.01}, {0}, {INFINITY}, NULL, leaky_apply, range_leaky, NULL},
    {"elu", 1, 0, {"alpha"}, {1.0}, {0}, {INFINITY}, NULL, elu_apply, range_elu, NULL},
    {"tanh", 0, 0, {0}, {0}, {0}, {0}, NULL, tanh_apply, range_tanh, NULL},
    {"sigmoid", 0, 0, {0}, {0}, {0}, {0}, NULL, sigmoid_apply, range_sigmoid, NULL},
    {"softplus", 2, 0, {"beta", "threshold"}, {1, 20}, {1e-6, 0}, {INFINITY, INFINITY}, NULL,
     softplus_apply, range_softplus, NULL},
    {"silu", 0, 0, {0}, {0}, {0}, {0}, NULL, silu_apply, range_silu, NULL},
    {"gelu", 0, 0, {0}, {0}, {0}, {0}, NULL, gelu_apply, range_gelu, NULL},
    {"dropout", 1, 0, {"p"}, {0.5}, {0}, {0.999}, NULL, dropout_apply, range_dropout, NULL},
    {"flatten", 0, 0, {0}, {0}, {0}, {0}, NULL, flatten_apply, range_same, NULL},
};

const ly_def *ly_find(const char *name)
{
    for (size_t k = 0; k < AG_COUNTOF(layers); k++)
        if (strcmp(layers[k].name, name) == 0) return &layers[k];
    return NULL;
}

void ly_offer_names(void *b)
{
    for (size_t k = 0; k < AG_COUNTOF(layers); k++) sg_offer(b, layers[k].name);
}

int ly_args(const ly_def *d, const double *vals, const char *const *keys, int n, double *args,
            ag_loc loc, ag_error *err)
{
    int set[SP_MAX_LAYER_ARGS] = {0};
    for (int k = 0; k < d->nargs; k++) args[k] = d->arg_defaults[k];
    for (int k = 0, pos = 0; k < n; k++) {
        int at = pos;
        if (keys && keys[k]) {
            at = -1;
            for (int j = 0; j < d->nargs; j++)
                if (strcmp(d->arg_names[j], keys[k]) == 0) at = j;
            if (at < 0) {
                sg_best b;
                sg_init(&b, keys[k]);
                for (int j = 0; j < d->nargs; j++) sg_offer(&b, d->arg_names[j]);
                char hint[96];
                return ag_errorf(err, loc, "%s has no argument '%s'%s", d->name, keys[k],
                                 sg_hint(&b, hint, sizeof hint));
            }
        } else {
            pos++;
        }
        if (at >= d->nargs)
            return ag_errorf(err, loc, "%s takes %s%d argument%s, got %d", d->name,
                             d->nargs > d->nrequired ? "at most " : "", d->nargs,
                             d->nargs == 1 ? "" : "s", n);
        if (set[at]) return ag_errorf(err, loc, "%s: '%s' given twice", d->name, d->arg_names[at]);
        set[at] = 1;
        if (!(vals[k] >= d->arg_lo[at] && vals[k] <= d->arg_hi[at]))
            return ag_errorf(err, loc, "%s: '%s' must be in [%g, %g], got %g", d->name,
                             d->arg_names[at], d->arg_lo[at], d->arg_hi[at], vals[k]);
        args[at] = vals[k];
    }
    for (int k = 0; k < d->nrequired; k++)
        if (!set[k]) return ag_errorf(err, loc, "%s needs its '%s', like '%s 256'", d->name,
                                      d->arg_names[k], d->name);
    if (d == &layers[0] && args[0] != floor(args[0]))
        return ag_errorf(err, loc, "linear: 'out' must be a whole number, got %g", args[0]);
    return AG_OK;
}

int ly_apply(ev_ctx *c, const ly_def *d, const double *args, const pv *x, ag_loc loc, pv *out,
             ag_error *err)
{
    pg_model *m = c->model;
    AG_ASSERT(m);
    ly_slot *s;
    if (!m->declared) {
        if (m->nslots == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 16;
            m->slots = ag_xrealloc(m->slots, (size_t)m->cap * sizeof *m->slots);
        }
        s = &m->slots[m->nslots++];
        memset(s, 0, sizeof *s);
        s->def = d;
        s->loc = loc;
        memcpy(s->args, args, sizeof s->args);
        /* Stacks name parameters by position, like torch.nn.Sequential; graph models
         * by node, numbered from the second layer with parameters in one node. */
        char prefix[200], label[96];
        if (c->node && c->node_layers == 0)
            snprintf(prefix, sizeof prefix, "%s.%s", m->spec->name, c->node);
        else if (c->node)
            snprintf(prefix, sizeof prefix, "%s.%s.%d", m->spec->name, c->node, c->node_layers);
        else
            snprintf(prefix, sizeof prefix, "%s.%d", m->spec->name, c->layer_index);
        int k = snprintf(label, sizeof label, "%s%s%s", c->node ? c->node : "", c->node ? ": " : "", d->name);
        for (int j = 0; j < d->nargs && k < (int)sizeof label; j++)
            if (j < d->nrequired || args[j] != d->arg_defaults[j])
                k += snprintf(label + k, sizeof label - (size_t)k, " %g", args[j]);
        s->label = ar_strdup(&c->p->params.arena, label);  /* lives as long as the program */
        if (d->declare && d->declare(c, s, x->node, prefix, err)) return AG_ERR;
    } else {
        AG_ASSERT(c->cursor < m->nslots && m->slots[c->cursor].def == d);
        s = &m->slots[c->cursor];
    }
    c->cursor++;
    if (c->node && d->declare) c->node_layers++;
    ag_graph_set_loc(c->g, loc);
    ag_node *y = d->apply(c, s, x->node);
    if (!y) {
        *err = c->g->err;
        return AG_ERR;
    }
    if (!m->declared) {
        s->out = y->shape;
        s->out_batched = y->batched;
        int64_t per = ag_numel(&y->shape) / (y->batched && y->shape.d[0] ? y->shape.d[0] : 1);
        if (!d->declare) s->flops = per;
    }
    float lo = x->lo, hi = x->hi;
    if (d->range)
        d->range(s->args, &lo, &hi);
    else
        lo = -INFINITY, hi = INFINITY;
    *out = ev_tensor(y, lo, hi, loc);
    return AG_OK;
}
