/* eval.c — spec expressions to graph nodes: names, arithmetic, calls of builtins,
 * layers and models, and the value ranges that travel with them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/suggest.h"
#include "eval.h"

pv ev_tensor(ag_node *n, float lo, float hi, ag_loc loc)
{
    return (pv){.kind = PV_TENSOR, .node = n, .lo = lo, .hi = hi, .loc = loc};
}

void ev_bind(ev_ctx *c, const char *name, pv v)
{
    if (c->nenv == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 32;
        c->env = ag_xrealloc(c->env, (size_t)c->cap * sizeof *c->env);
    }
    c->env[c->nenv++] = (ev_binding){name, v};
}

const pv *ev_lookup(const ev_ctx *c, const char *name)
{
    for (int k = c->nenv - 1; k >= c->scope; k--)
        if (strcmp(c->env[k].name, name) == 0) return &c->env[k].val;
    return NULL;
}

/* The index of model node `name`, or -1. */
static int node_index(const sp_model *sm, const char *name)
{
    for (int k = 0; k < sm->nnodes; k++)
        if (!strcmp(sm->nodes[k].name, name)) return k;
    return -1;
}

/* Whether expression e uses node `target`, itself or through the nodes it names. The
 * recursion is bounded by the parser's limit on an expression's height and by seen. */
static int uses_node(const sp_model *sm, const ex_node *e, int target, unsigned char *seen)
{
    if (!e) return 0;
    if (e->kind == EX_NAME) {
        int j = node_index(sm, e->text);
        if (j < 0 || seen[j]) return j == target;
        seen[j] = 1;
        return j == target || uses_node(sm, sm->nodes[j].expr, target, seen);
    }
    if (uses_node(sm, e->lhs, target, seen) || uses_node(sm, e->rhs, target, seen)) return 1;
    for (size_t k = 0; k < e->nargs; k++)
        if (uses_node(sm, e->args[k].value, target, seen)) return 1;
    return 0;
}

/* A graph model's node that uses one defined below it: in a cycle, or out of order. */
static int defined_below(const ev_ctx *c, const ex_node *e, ag_error *err)
{
    const sp_model *sm = c->model->spec;
    int later = node_index(sm, e->text), here = c->node ? node_index(sm, c->node) : -1;
    unsigned char *seen = ag_xcalloc((size_t)sm->nnodes, 1);
    int cycle = here >= 0 && uses_node(sm, sm->nodes[later].expr, here, seen);
    free(seen);
    if (cycle)
        return ag_errorf(err, e->loc, "'%s' is defined below and uses '%s': the nodes of model '%s' form a cycle",
                         e->text, c->node, sm->name);
    return ag_errorf(err, e->loc, "'%s' is defined below, at line %d; a node uses the nodes above it: move '%s' up",
                     e->text, sm->nodes[later].loc.line, e->text);
}

static int undefined(const ev_ctx *c, const ex_node *e, int is_call, ag_error *err)
{
    if (!is_call && c->model && c->model->spec->nnodes && node_index(c->model->spec, e->text) >= 0)
        return defined_below(c, e, err);
    sg_best b;
    sg_init(&b, e->text);
    char hint[96];
    if (is_call) {
        for (int k = 0; k < c->p->nmodels; k++) sg_offer(&b, c->p->models[k].spec->name);
        bi_offer_names(&b);
        ly_offer_names(&b);
        return ag_errorf(err, e->loc, "unknown function or model '%s'%s", e->text,
                         sg_hint(&b, hint, sizeof hint));
    }
    for (int k = c->nenv - 1; k >= c->scope; k--) sg_offer(&b, c->env[k].name);
    if (!c->model) sg_offer(&b, "batch");
    if (c->p->spec->data.kind == SP_DATA_TEXT) {
        sg_offer(&b, "vocab");
        sg_offer(&b, "context");
    }
    static const char *const reductions[] = {"mean", "sum", "none"}; /* bce(p, x, sum) */
    for (size_t k = 0; k < AG_COUNTOF(reductions); k++) sg_offer(&b, reductions[k]);
    return ag_errorf(err, e->loc, "undefined name '%s'%s", e->text, sg_hint(&b, hint, sizeof hint));
}

/* The schedule's names: T, and the tables beta, alpha, alpha_bar as constants [T]
 * (one node per graph and name, filled when the graph is planned). */
static int ev_constant(ev_ctx *c, const ex_node *e, pv *out)
{
    static const char *const tables[] = {"beta", "alpha", "alpha_bar"};
    pg_program *p = c->p;
    if (!strcmp(e->text, "T")) {
        *out = (pv){.kind = PV_NUM, .num = p->sched_steps, .loc = e->loc};
        return 1;
    }
    for (int k = 0; k < 3; k++) {
        if (strcmp(e->text, tables[k])) continue;
        ag_node *n = NULL;
        for (int j = 0; j < p->nconsts && !n; j++)
            if (p->consts[j].graph == c->g && !strcmp(p->consts[j].name, tables[k])) n = p->consts[j].node;
        if (!n) {
            ag_graph_set_loc(c->g, e->loc);
            n = ag_input(c->g, tables[k], ag_shape1(p->sched_steps), 0);
            p->consts = ag_xrealloc(p->consts, (size_t)(p->nconsts + 1) * sizeof *p->consts);
            p->consts[p->nconsts++] = (pg_const){c->g, n, tables[k], p->sched[k]};
        }
        float lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < p->sched_steps; j++) lo = fminf(lo, p->sched[k][j]), hi = fmaxf(hi, p->sched[k][j]);
        *out = ev_tensor(n, lo, hi, e->loc);
        return 1;
    }
    return 0;
}

/* Text data's numbers, usable anywhere, model shapes and stack layers included: vocab
 * (the ids run over [0, vocab)) and context (the tokens a model sees). */
static int data_number(const ev_ctx *c, const char *name, double *v)
{
    const pg_program *p = c->p;
    if (p->spec->data.kind != SP_DATA_TEXT) return 0;
    if (!strcmp(name, "vocab"))
        *v = p->classes;
    else if (!strcmp(name, "context"))
        *v = p->cols - 1;
    else
        return 0;
    return 1;
}

static int ev_data_number(ev_ctx *c, const ex_node *e, pv *out)
{
    double v;
    if (!data_number(c, e->text, &v)) return 0;
    *out = (pv){.kind = PV_NUM, .num = v, .loc = e->loc};
    return 1;
}

/* ---------------------------------------------------------- arithmetic -- */

static void sort2(float *lo, float *hi)
{
    if (*lo > *hi) {
        float t = *lo;
        *lo = *hi;
        *hi = t;
    }
}

/* The range of x op y over boxes; NaN (inf - inf, 0 * inf) means unknown. */
static void range_bin(ex_op op, const pv *x, const pv *y, float *lo, float *hi)
{
    double c[4];
    switch (op) {
    case EX_ADD: *lo = x->lo + y->lo, *hi = x->hi + y->hi; break;
    case EX_SUB: *lo = x->lo - y->hi, *hi = x->hi - y->lo; break;
    case EX_MUL:
    case EX_DIV:
        if (op == EX_DIV && y->lo <= 0 && y->hi >= 0) {
            *lo = -INFINITY, *hi = INFINITY;
            return;
        }
        for (int k = 0; k < 4; k++) {
            double a = k & 1 ? x->hi : x->lo, b = k & 2 ? y->hi : y->lo;
            c[k] = op == EX_MUL ? a * b : a / b;
        }
        *lo = (float)fmin(fmin(c[0], c[1]), fmin(c[2], c[3]));
        *hi = (float)fmax(fmax(c[0], c[1]), fmax(c[2], c[3]));
        for (int k = 0; k < 4; k++)
            if (isnan(c[k])) *lo = -INFINITY, *hi = INFINITY;
        break;
    case EX_POW: *lo = -INFINITY, *hi = INFINITY; break;
    }
    if (isnan(*lo)) *lo = -INFINITY;
    if (isnan(*hi)) *hi = INFINITY;
}

/* `batch` in arithmetic (loss / batch) is the current batch size, as a node. */
static int as_value(ev_ctx *c, pv *v, ag_error *err)
{
    if (v->kind == PV_BATCH) {
        ag_graph_set_loc(c->g, v->loc);
        ag_node *n = ag_batch_size(c->g);
        if (!n) {
            *err = c->g->err;
            return AG_ERR;
        }
        *v = ev_tensor(n, 1, INFINITY, v->loc);
    }
    if (v->kind == PV_WORD) return ag_errorf(err, v->loc, "'%s' is not a value here", v->word);
    return AG_OK;
}

static int eval_bin(ev_ctx *c, const ex_node *e, pv *out, ag_error *err)
{
    pv x, y;
    if (ev_eval(c, e->lhs, &x, err) || ev_eval(c, e->rhs, &y, err) || as_value(c, &x, err) ||
        as_value(c, &y, err))
        return AG_ERR;
    if (x.kind == PV_NUM && y.kind == PV_NUM) {
        double a = x.num, b = y.num, r = 0;
        switch (e->op) {
        case EX_ADD: r = a + b; break;
        case EX_SUB: r = a - b; break;
        case EX_MUL: r = a * b; break;
        case EX_DIV:
            if (b == 0) return ag_errorf(err, e->loc, "division by zero");
            r = a / b;
            break;
        case EX_POW: r = pow(a, b); break;
        }
        *out = (pv){.kind = PV_NUM, .num = r, .loc = e->loc};
        return AG_OK;
    }
    ag_graph_set_loc(c->g, e->loc);
    float lo, hi;
    ag_node *n = NULL;
    if (x.kind == PV_TENSOR && y.kind == PV_NUM) {
        float b = (float)y.num;
        pv yy = {.lo = b, .hi = b};
        range_bin(e->op, &x, &yy, &lo, &hi);
        switch (e->op) {
        case EX_ADD: n = ag_affine(c->g, x.node, 1, b); break;
        case EX_SUB: n = ag_affine(c->g, x.node, 1, -b); break;
        case EX_MUL: n = ag_affine(c->g, x.node, b, 0); break;
        case EX_DIV:
            if (b == 0) return ag_errorf(err, e->loc, "division by zero");
            n = ag_affine(c->g, x.node, 1 / b, 0);
            break;
        case EX_POW:
            n = ag_pow(c->g, x.node, b);
            if (b == 2) lo = 0;
            break;
        }
    } else if (x.kind == PV_NUM && y.kind == PV_TENSOR) {
        float a = (float)x.num;
        pv xx = {.lo = a, .hi = a};
        range_bin(e->op, &xx, &y, &lo, &hi);
        switch (e->op) {
        case EX_ADD: n = ag_affine(c->g, y.node, 1, a); break;
        case EX_SUB: n = ag_affine(c->g, y.node, -1, a); break;
        case EX_MUL: n = ag_affine(c->g, y.node, a, 0); break;
        case EX_DIV: n = ag_rdiv(c->g, a, y.node); break;
        case EX_POW:
            return ag_errorf(err, e->loc, "a number to the power of a tensor is not supported; write exp(x * log(a))");
        }
    } else {
        if (e->op == EX_POW)
            return ag_errorf(err, e->loc, "'**' takes a number as its exponent");
        range_bin(e->op, &x, &y, &lo, &hi);
        static const ag_op ops[] = {AG_OP_ADD, AG_OP_SUB, AG_OP_MUL, AG_OP_DIV};
        n = ag_binary(c->g, ops[e->op], x.node, y.node);
    }
    if (!n) {
        *err = c->g->err;
        return AG_ERR;
    }
    sort2(&lo, &hi);
    *out = ev_tensor(n, lo, hi, e->loc);
    return AG_OK;
}

/* --------------------------------------------------------------- calls -- */

/* A layer called in a graph model: linear(h, 400), leaky_relu(h, slope=0.2). */
static int call_layer(ev_ctx *c, const ly_def *d, const ex_node *e, pv *out, ag_error *err)
{
    if (!c->model) {
        if (d->declare)
            return ag_errorf(err, e->loc, "'%s' has parameters: use it inside a model, not in the step", d->name);
    }
    if (e->nargs < 1 || e->args[0].key)
        return ag_errorf(err, e->loc, "%s: the first argument is the input tensor", d->name);
    pv x;
    if (ev_eval(c, e->args[0].value, &x, err)) return AG_ERR;
    if (x.kind != PV_TENSOR) return ag_errorf(err, e->args[0].value->loc, "%s: the input must be a tensor", d->name);
    sp_arg in[SP_MAX_LAYER_ARGS];
    int n = 0;
    for (size_t k = 1; k < e->nargs; k++) {
        const ex_node *a = e->args[k].value;
        if (n == SP_MAX_LAYER_ARGS) return ag_errorf(err, a->loc, "%s: too many arguments", d->name);
        sp_arg *arg = &in[n++];
        *arg = (sp_arg){.key = e->args[k].key, .loc = a->loc, .key_loc = e->args[k].key_loc};
        int at = ly_arg_index(d, arg->key, n - 1);
        if (at < 0) break; /* no argument of that name: ly_args says so, before any value */
        /* made(h, 512, order=random): a word, not a name to look up, for an argument that
         * takes words; ly_args checks it is one of them. */
        if (a->kind == EX_NAME && ly_takes_words(d, at)) {
            arg->word = a->text;
            continue;
        }
        pv v = {0};
        if (ev_eval(c, a, &v, err)) return AG_ERR;
        if (v.kind != PV_NUM) return ag_errorf(err, a->loc, "%s: expected a number", d->name);
        arg->num = v.num;
    }
    double args[SP_MAX_LAYER_ARGS];
    if (ly_args(d, in, n, args, e->loc, err)) return AG_ERR;
    if (!c->model) {
        /* A parameter-free layer in the step: apply it directly. */
        ly_slot s = {.def = d};
        memcpy(s.args, args, sizeof s.args);
        ag_graph_set_loc(c->g, e->loc);
        ag_node *y = d->apply(c, &s, x.node);
        if (!y) {
            *err = c->g->err;
            return AG_ERR;
        }
        float lo = x.lo, hi = x.hi;
        if (d->range)
            d->range(args, &lo, &hi);
        else
            lo = -INFINITY, hi = INFINITY;
        *out = ev_tensor(y, lo, hi, e->loc);
        return AG_OK;
    }
    return ly_apply(c, d, args, &x, e->loc, out, err);
}

static pg_model *find_model(ev_ctx *c, const char *name)
{
    for (int k = 0; k < c->p->nmodels; k++)
        if (strcmp(c->p->models[k].spec->name, name) == 0) return &c->p->models[k];
    return NULL;
}

static int call(ev_ctx *c, const ex_node *e, pv *outs, int *nout, ag_error *err)
{
    pg_model *m = find_model(c, e->text);
    if (m) {
        pv args[SP_MAX_INPUTS];
        if ((int)e->nargs != m->spec->ninputs)
            return ag_errorf(err, e->loc, "model '%s' takes %d input%s, got %zu", m->spec->name,
                             m->spec->ninputs, m->spec->ninputs == 1 ? "" : "s", e->nargs);
        for (size_t k = 0; k < e->nargs; k++) {
            if (e->args[k].key)
                return ag_errorf(err, e->args[k].key_loc, "model inputs are positional");
            if (ev_eval(c, e->args[k].value, &args[k], err) || as_value(c, &args[k], err)) return AG_ERR;
        }
        return ev_call_model(c, m, args, (int)e->nargs, e->loc, outs, nout, err);
    }
    const ly_def *ld = ly_find(e->text);
    if (ld) {
        *nout = 1;
        return call_layer(c, ld, e, outs, err);
    }
    const bi_def *bd = bi_find(e->text);
    if (bd) return bi_call(c, bd, e, outs, nout, err);
    return undefined(c, e, 1, err);
}

int ev_eval_multi(ev_ctx *c, const ex_node *e, pv *outs, int *nout, ag_error *err)
{
    *nout = 1;
    switch (e->kind) {
    case EX_NUM: outs[0] = (pv){.kind = PV_NUM, .num = e->num, .loc = e->loc}; return AG_OK;
    case EX_NAME: {
        const pv *v = ev_lookup(c, e->text);
        if (v) {
            outs[0] = *v;
            outs[0].loc = e->loc;
            return AG_OK;
        }
        if (c->p->sched_steps && ev_constant(c, e, outs)) return AG_OK;
        if (ev_data_number(c, e, outs)) return AG_OK;
        if (!c->model && strcmp(e->text, "batch") == 0) {
            outs[0] = (pv){.kind = PV_BATCH, .loc = e->loc};
            return AG_OK;
        }
        /* A reduction named as a bare word: `sum` in bce(p, x, sum). */
        if (!strcmp(e->text, "mean") || !strcmp(e->text, "sum") || !strcmp(e->text, "none")) {
            outs[0] = (pv){.kind = PV_WORD, .word = e->text, .loc = e->loc};
            return AG_OK;
        }
        return undefined(c, e, 0, err);
    }
    case EX_CALL: return call(c, e, outs, nout, err);
    case EX_NEG: {
        pv x;
        if (ev_eval(c, e->lhs, &x, err) || as_value(c, &x, err)) return AG_ERR;
        if (x.kind == PV_NUM) {
            outs[0] = (pv){.kind = PV_NUM, .num = -x.num, .loc = e->loc};
            return AG_OK;
        }
        ag_graph_set_loc(c->g, e->loc);
        ag_node *n = ag_unary(c->g, AG_OP_NEG, x.node);
        if (!n) {
            *err = c->g->err;
            return AG_ERR;
        }
        outs[0] = ev_tensor(n, -x.hi, -x.lo, e->loc);
        return AG_OK;
    }
    case EX_BIN: return eval_bin(c, e, &outs[0], err);
    }
    AG_ASSERT(0);
}

int ev_eval(ev_ctx *c, const ex_node *e, pv *out, ag_error *err)
{
    pv outs[EV_MAX_OUT];
    int n;
    if (ev_eval_multi(c, e, outs, &n, err)) return AG_ERR;
    if (n != 1)
        return ag_errorf(err, e->loc, "'%s' gives %d values here; assign them to names first, like 'a, b = ...'",
                         e->text, n);
    *out = outs[0];
    return AG_OK;
}

/* -------------------------------------------------------------- models -- */

static int check_input(const pg_model *m, int k, const pv *a, ag_loc loc, ag_error *err)
{
    const ag_shape *want = &m->spec->inputs[k];
    char wbuf[64], gbuf[64];
    if (a->kind != PV_TENSOR)
        return ag_errorf(err, loc, "model '%s': input %d must be a tensor", m->spec->name, k + 1);
    const ag_shape *got = &a->node->shape;
    int good = got->ndim == want->ndim + 1;
    for (int j = 0; good && j < want->ndim; j++) good = got->d[j + 1] == want->d[j];
    if (good) return AG_OK;
    ag_shape w = *want;
    w.ndim = want->ndim + 1;
    for (int j = want->ndim; j > 0; j--) w.d[j] = want->d[j - 1];
    w.d[0] = 1;
    return ag_errorf(err, loc, "model '%s' expects input %s%s%s, got %s", m->spec->name,
                     m->spec->ninputs > 1 ? "'" : "", m->spec->ninputs > 1 ? m->spec->input_names[k] : "",
                     ag_shape_str(&w, 1, wbuf, sizeof wbuf),
                     ag_shape_str(got, a->node->batched, gbuf, sizeof gbuf));
}

int ev_call_model(ev_ctx *c, pg_model *m, const pv *args, int nargs, ag_loc loc, pv *outs,
                  int *nout, ag_error *err)
{
    for (int k = 0; k < nargs; k++)
        if (check_input(m, k, &args[k], args[k].loc.file ? args[k].loc : loc, err)) return AG_ERR;
    /* A graph node that calls its own model, or a model that calls back, would build
     * without end. */
    if (m->calling) {
        if (c->model == m) return ag_errorf(err, loc, "model '%s' calls itself", m->spec->name);
        return ag_errorf(err, loc, "model '%s' calls itself through model '%s'", m->spec->name,
                         c->model ? c->model->spec->name : "?");
    }

    /* A model body sees its inputs and its own nodes only. */
    ev_ctx saved = *c;
    m->calling = 1;
    c->scope = c->nenv;
    c->model = m;
    c->cursor = 0;
    c->node = NULL;
    c->made_deg = NULL;
    c->made_order = NULL;
    const sp_model *sm = m->spec;
    int rc = AG_OK;
    if (sm->nlayers) {
        pv x = args[0];
        for (int k = 0; k < sm->nlayers && rc == AG_OK; k++) {
            const sp_layer *L = &sm->layers[k];
            const ly_def *d = ly_find(L->kind);
            if (!d) {
                sg_best b;
                sg_init(&b, L->kind);
                ly_offer_names(&b);
                char hint[96];
                rc = ag_errorf(err, L->loc, "unknown layer '%s'%s", L->kind, sg_hint(&b, hint, sizeof hint));
                break;
            }
            /* A word for an argument that takes numbers may be vocab or context. */
            sp_arg in[SP_MAX_LAYER_ARGS];
            memcpy(in, L->args, (size_t)L->nargs * sizeof *in);
            for (int j = 0; j < L->nargs; j++)
                if (in[j].word && !ly_takes_words(d, ly_arg_index(d, in[j].key, j)) &&
                    data_number(c, in[j].word, &in[j].num))
                    in[j].word = NULL;
            double a[SP_MAX_LAYER_ARGS];
            c->layer_index = k;
            rc = ly_args(d, in, L->nargs, a, L->loc, err);
            if (rc == AG_OK) rc = ly_apply(c, d, a, &x, L->loc, &x, err);
        }
        outs[0] = x;
        *nout = 1;
    } else {
        for (int k = 0; k < sm->ninputs; k++) ev_bind(c, sm->input_names[k], args[k]);
        for (int k = 0; k < sm->nnodes && rc == AG_OK; k++) {
            c->node = sm->nodes[k].name;
            c->node_layers = 0;
            pv v[EV_MAX_OUT];
            int nv;
            rc = ev_eval_multi(c, sm->nodes[k].expr, v, &nv, err);
            if (rc == AG_OK && nv != 1)
                rc = ag_errorf(err, sm->nodes[k].loc, "node '%s' gives %d values; a node holds one", c->node, nv);
            if (rc == AG_OK) ev_bind(c, sm->nodes[k].name, v[0]);
        }
        if (rc == AG_OK && sm->noutputs > EV_MAX_OUT)
            rc = ag_errorf(err, sm->output_locs[EV_MAX_OUT], "model '%s' has %d outputs, more than the %d a model can give",
                           sm->name, sm->noutputs, EV_MAX_OUT);
        for (int k = 0; k < sm->noutputs && rc == AG_OK; k++) {
            const pv *v = ev_lookup(c, sm->outputs[k]);
            if (!v) {
                sg_best b;
                sg_init(&b, sm->outputs[k]);
                for (int j = 0; j < sm->nnodes; j++) sg_offer(&b, sm->nodes[j].name);
                char hint[96];
                rc = ag_errorf(err, sm->output_locs[k], "model '%s' has no node '%s'%s", sm->name,
                               sm->outputs[k], sg_hint(&b, hint, sizeof hint));
                break;
            }
            outs[k] = *v;
            outs[k].loc = loc;
        }
        *nout = sm->noutputs;
    }
    if (rc == AG_OK && !m->declared) {
        m->declared = 1;
        for (int k = 0; k < m->nslots; k++) {
            m->params += m->slots[k].params;
            m->flops += m->slots[k].flops;
        }
    }
    AG_ASSERT(rc != AG_OK || c->cursor == m->nslots);
    ev_binding *env = c->env;
    int cap = c->cap;
    *c = saved;
    c->env = env;
    c->cap = cap;
    m->calling = 0;
    return rc;
}
