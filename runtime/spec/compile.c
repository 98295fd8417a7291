/* compile.c — a checked spec compiled: its models' parameters, its optimizers, the
 * averages of `ema:`, and the training step's graph cut at each update. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/metrics.h"
#include "aigc/suggest.h"
#include "compile.h"

/* --------------------------------------------------------------- schedule -- */

/* beta_t, alpha_t = 1 - beta_t, alpha_bar_t = prod alpha_s, in double then float:
 * linear as in Ho et al., cosine as in Nichol and Dhariwal (beta capped at 0.999). */
static void make_schedule(pg_program *p, const sp_schedule *sc)
{
    int T = sc->steps;
    p->sched_steps = T;
    for (int k = 0; k < 3; k++) p->sched[k] = ag_xmalloc((size_t)T * sizeof(float));
    double bar = 1;
    for (int t = 0; t < T; t++) {
        double beta;
        if (sc->kind == SP_SCHEDULE_LINEAR) {
            beta = T == 1 ? sc->beta_start : sc->beta_start + (sc->beta_end - sc->beta_start) * t / (T - 1);
        } else {
            double f0 = cos(sc->s / (1 + sc->s) * M_PI / 2);
            double f1 = cos(((double)t / T + sc->s) / (1 + sc->s) * M_PI / 2);
            double f2 = cos(((double)(t + 1) / T + sc->s) / (1 + sc->s) * M_PI / 2);
            beta = fmin(1 - (f2 * f2 / (f0 * f0)) / (f1 * f1 / (f0 * f0)), 0.999);
        }
        bar *= 1 - beta;
        p->sched[0][t] = (float)beta;
        p->sched[1][t] = (float)(1 - beta);
        p->sched[2][t] = (float)bar;
    }
}

int pg_plan_impl(pg_program *p, ag_graph *g, int batch, ag_error *err)
{
    if (ag_graph_plan(g, batch, err)) return AG_ERR;
    for (int k = 0; k < p->nconsts; k++)
        if (p->consts[k].graph == g)
            memcpy(p->consts[k].node->data, p->consts[k].values, (size_t)p->sched_steps * sizeof(float));
    return AG_OK;
}

int64_t pg_planned_bytes_impl(const pg_program *p)
{
    int64_t n = p->params.total * (int64_t)sizeof(float) * 5 + p->step.slab_floats * (int64_t)sizeof(float);
    for (int k = 0; k < p->nsamples; k++) n += p->samples[k].graph.slab_floats * (int64_t)sizeof(float);
    return n;
}

/* ----------------------------------------------------------- declaring -- */

/* Each model is built once on a scratch graph at batch 1: that declares its
 * parameters, in the order PyTorch would create them, and fixes its shapes. */
static int declare_models(pg_program *p, ag_error *err)
{
    for (int k = 0; k < p->nmodels; k++) {
        pg_model *m = &p->models[k];
        if (m->declared) continue; /* declared while building another model */
        ag_graph g;
        ag_graph_init(&g, &p->params, &p->rng);
        ev_ctx c = {.p = p, .g = &g};
        pv args[SP_MAX_INPUTS], outs[EV_MAX_OUT];
        int nout, rc = AG_OK;
        ag_graph_set_loc(&g, m->spec->loc);
        for (int j = 0; j < m->spec->ninputs; j++) {
            ag_shape s = m->spec->inputs[j];
            s.ndim++;
            for (int d = s.ndim - 1; d > 0; d--) s.d[d] = s.d[d - 1];
            s.d[0] = 1;
            args[j] = ev_tensor(ag_input(&g, m->spec->input_names[j], s, 1), -INFINITY, INFINITY, m->spec->loc);
        }
        rc = ev_call_model(&c, m, args, m->spec->ninputs, m->spec->loc, outs, &nout, err);
        free(c.env);
        ag_graph_free(&g);
        if (rc) return AG_ERR;
    }
    return AG_OK;
}

static void init_params(pg_program *p)
{
    for (int k = 0; k < p->nmodels; k++)
        for (int j = 0; j < p->models[k].nslots; j++) {
            const ly_slot *s = &p->models[k].slots[j];
            if (s->def->init) s->def->init(s, &p->params, &p->rng);
        }
}

static pg_model *model_named(pg_program *p, const char *name)
{
    for (int k = 0; k < p->nmodels; k++)
        if (strcmp(p->models[k].spec->name, name) == 0) return &p->models[k];
    return NULL;
}

/* The parameter indices of the listed models, in store order. */
static int collect_params(pg_program *p, const sp_optim *o, int *out)
{
    int n = 0;
    for (int k = 0; k < o->nmodels; k++) {
        const pg_model *m = model_named(p, o->models[k]);
        for (int j = 0; j < m->nslots; j++)
            for (int q = 0; q < m->slots[j].ntrain; q++) out[n++] = m->slots[j].param[q];
    }
    return n;
}

static int make_optims(pg_program *p, ag_error *err)
{
    const sp_spec *s = p->spec;
    p->optims = ag_xcalloc((size_t)s->noptims, sizeof *p->optims);
    int *idx = ag_xmalloc((size_t)(p->params.n ? p->params.n : 1) * sizeof *idx);
    for (int k = 0; k < s->noptims; k++) {
        const sp_optim *o = &s->optims[k];
        int n = collect_params(p, o, idx);
        if (n == 0) {
            free(idx);
            return ag_errorf(err, o->loc, "optimizer '%s' has no parameters to update: %s%s has none",
                             o->name, o->models[0], o->nmodels > 1 ? " and the others" : "");
        }
        opt_group_spec g = {idx, n, o->h.lr, o->h.weight_decay};
        if (opt_init(&p->optims[k], o->kind, &o->h, &p->params, &g, 1, o->loc, err)) {
            free(idx);
            return AG_ERR;
        }
    }
    free(idx);
    return AG_OK;
}

/* ----------------------------------------------------------------- ema -- */

/* The averages are declared after every model's own parameters, one per parameter of
 * the model (buffers too: the averaged model is a whole model to run). */
static void declare_ema(pg_program *p)
{
    const sp_spec *s = p->spec;
    int n = 0;
    for (int k = 0; k < p->nmodels; k++) n += s->models[k].has_ema;
    p->nema = n;
    p->ema = ag_xcalloc((size_t)(n ? n : 1), sizeof *p->ema);
    pg_ema *e = p->ema;
    for (int k = 0; k < p->nmodels; k++) {
        const sp_model *sm = &s->models[k];
        if (!sm->has_ema) continue;
        const pg_model *m = &p->models[k];
        int np = 0;
        for (int j = 0; j < m->nslots; j++) np += m->slots[j].nparam;
        *e = (pg_ema){.model = k, .decay = (float)sm->ema_decay, .warmup = sm->ema_warmup};
        e->runs = ag_xcalloc((size_t)(np ? np : 1), sizeof *e->runs);
        e->by_optim = ag_xcalloc((size_t)(s->noptims ? s->noptims : 1), 1);
        for (int o = 0; o < s->noptims; o++)
            for (int q = 0; q < s->optims[o].nmodels; q++)
                e->by_optim[o] |= strcmp(s->optims[o].models[q], sm->name) == 0;
        for (int j = 0; j < m->nslots; j++)
            for (int q = 0; q < m->slots[j].nparam; q++) {
                const ag_parameter *w = &p->params.p[m->slots[j].param[q]];
                char name[512];
                snprintf(name, sizeof name, "ema.%s", w->name);
                ag_shape shape = w->shape;
                int64_t live = w->offset, len = ag_numel(&shape);
                /* Adding may move the store's array: w is not used after it. */
                int ia = ag_params_add(&p->params, name, shape, w->loc);
                int64_t avg = p->params.p[ia].offset;
                pg_ema_run *last = e->nruns ? &e->runs[e->nruns - 1] : NULL;
                if (last && last->live + last->len == live && last->avg + last->len == avg)
                    last->len += len;
                else
                    e->runs[e->nruns++] = (pg_ema_run){live, avg, len};
            }
        e++;
    }
}

/* The average starts as the initialized weights, as PyTorch's deepcopy of the model. */
static void init_ema(pg_program *p)
{
    for (int k = 0; k < p->nema; k++)
        for (int r = 0; r < p->ema[k].nruns; r++) {
            const pg_ema_run *u = &p->ema[k].runs[r];
            memcpy(p->params.data + u->avg, p->params.data + u->live, (size_t)u->len * sizeof(float));
        }
}

/* ---------------------------------------------------------------- step -- */

/* Names the data defines for the step; `features` only where it is the data's (a
 * classifier's step may name its own). */
static int find_reserved(const sp_data *d, const char *name)
{
    return !strcmp(name, "pixels") || !strcmp(name, "label") || !strcmp(name, "x") || !strcmp(name, "batch") ||
           !strcmp(name, "tokens") || (d->kind == SP_DATA_FEATURES && !strcmp(name, "features"));
}

ag_node *pg_data_items_impl(pg_program *p, ev_ctx *c, int n, int batched)
{
    const sp_data *d = &p->spec->data;
    ag_graph_set_loc(c->g, d->loc);
    if (d->kind == SP_DATA_TEXT) {
        ag_node *t = ag_input(c->g, "tokens", ag_shape2(n, p->cols), batched);
        ev_bind(c, "tokens", ev_tensor(t, 0, (float)(p->classes - 1), d->loc));
        return t;
    }
    if (d->kind == SP_DATA_FEATURES) {
        ag_node *f = ag_input(c->g, "features", ag_shape2(n, p->cols), batched);
        ev_bind(c, "features", ev_tensor(f, -INFINITY, INFINITY, d->loc));
        return f;
    }
    ag_node *px = ag_input(c->g, "pixels", ag_shape3(n, p->rows, p->cols), batched);
    ev_bind(c, "pixels", ev_tensor(px, 0, 255, d->loc));
    return px;
}

static int compile_update(pg_program *p, ev_ctx *c, const ex_stmt *st, int *seg_from, ag_error *err)
{
    const sp_spec *s = p->spec;
    int o = sp_find_optim(s, st->names[0]);
    if (o < 0) {
        sg_best b;
        sg_init(&b, st->names[0]);
        for (int k = 0; k < s->noptims; k++) sg_offer(&b, s->optims[k].name);
        char hint[96];
        return ag_errorf(err, st->name_locs[0], "unknown optimizer '%s'%s", st->names[0],
                         sg_hint(&b, hint, sizeof hint));
    }
    pv loss;
    if (ev_eval(c, st->expr, &loss, err)) return AG_ERR;
    if (loss.kind != PV_TENSOR)
        return ag_errorf(err, st->expr->loc, "update %s: the loss is a constant; it must be computed from the models",
                         st->names[0]);
    if (ag_numel(&loss.node->shape) != 1 || loss.node->batched) {
        char buf[64];
        ag_shape_str(&loss.node->shape, loss.node->batched, buf, sizeof buf);
        return ag_errorf(err, st->expr->loc, "update %s: the loss must be a single number, got %s "
                         "(reduce it with mean or sum)", st->names[0], buf);
    }
    pg_segment *sg = &p->segs[p->nsegs++];
    *sg = (pg_segment){*seg_from, p->step.n, o, loss.node, NULL, st->every};
    *seg_from = p->step.n;
    return AG_OK;
}

/* Nodes made inside a model carry the layer's place; errors about the step want the
 * statement's too. The statement being compiled, and how many nodes have theirs. */
typedef struct stmt_marks {
    int done;
    ag_loc loc;
} stmt_marks;

/* The nodes made since the last call are the statement's at m->loc; loc is the next. */
static void stmt_of_nodes(pg_program *p, stmt_marks *m, ag_loc loc)
{
    int n = p->step.n;
    p->node_stmt = ag_xrealloc(p->node_stmt, (size_t)(n ? n : 1) * sizeof *p->node_stmt);
    for (int k = m->done; k < n; k++) p->node_stmt[k] = m->loc;
    m->done = n;
    m->loc = loc;
}

static int compile_step(pg_program *p, ag_error *err)
{
    const sp_spec *s = p->spec;
    ag_graph *g = &p->step;
    ev_ctx c = {.p = p, .g = g};
    stmt_marks marks = {0};
    int rc = AG_ERR;

    int text = s->data.kind == SP_DATA_TEXT;
    p->pixels = pg_data_items_impl(p, &c, 1, 1);
    p->labels = ag_input(g, "labels", ag_shape1(1), 1);
    if (!text) ev_bind(&c, "label", ev_tensor(p->labels, 0, (float)(p->classes - 1), s->data.loc));
    pv x;
    if (ev_eval(&c, s->data.x, &x, err)) goto out;
    if (x.kind != PV_TENSOR) {
        ag_errorf(err, s->data.x->loc, "'x' must be a tensor computed from %s",
                  text ? "tokens" : s->data.kind == SP_DATA_FEATURES ? "features" : "pixels");
        goto out;
    }
    ev_bind(&c, "x", x);

    p->segs = ag_xcalloc((size_t)s->nsteps + 1, sizeof *p->segs);
    int seg_from = 0;
    for (int k = 0; k < s->nsteps; k++) {
        const ex_stmt *st = s->steps[k];
        stmt_of_nodes(p, &marks, st->loc);
        if (st->kind == EX_UPDATE) {
            if (compile_update(p, &c, st, &seg_from, err)) goto out;
            continue;
        }
        if (st->kind == EX_EVAL) {
            ag_errorf(err, st->loc, "a step statement assigns a name (loss = ...) or updates an optimizer (update opt: loss)");
            goto out;
        }
        pv v[EV_MAX_OUT];
        int nv;
        if (ev_eval_multi(&c, st->expr, v, &nv, err)) goto out;
        if ((size_t)nv != st->nnames) {
            ag_errorf(err, st->loc, "%zu name%s on the left, but the right side gives %d value%s", st->nnames,
                      st->nnames == 1 ? "" : "s", nv, nv == 1 ? "" : "s");
            goto out;
        }
        for (size_t j = 0; j < st->nnames; j++) {
            if (find_reserved(&s->data, st->names[j])) {
                ag_errorf(err, st->name_locs[j], "'%s' is the data's; choose another name", st->names[j]);
                goto out;
            }
            v[j].loc = st->name_locs[j];
            ev_bind(&c, st->names[j], v[j]);
            if (v[j].kind == PV_TENSOR) {
                /* Hooks read the step's named values; the last binding of a name wins. */
                int at = p->nnamed;
                for (int q = 0; q < p->nnamed; q++)
                    if (!strcmp(p->named[q], st->names[j])) at = q;
                if (at == p->nnamed) {
                    p->named = ag_xrealloc(p->named, (size_t)(at + 1) * sizeof *p->named);
                    p->named_nodes = ag_xrealloc(p->named_nodes, (size_t)(at + 1) * sizeof *p->named_nodes);
                    p->nnamed++;
                }
                p->named[at] = st->names[j];
                p->named_nodes[at] = v[j].node;
            }
        }
    }
    stmt_of_nodes(p, &marks, (ag_loc){0});
    if (seg_from < g->n) p->segs[p->nsegs++] = (pg_segment){seg_from, g->n, -1, NULL, NULL, 1};

    /* The metrics: what the spec logs, else every update's loss. */
    p->logs = ag_xcalloc((size_t)(s->nlogs + s->nsteps + 1), sizeof *p->logs);
    p->log_names = ag_xcalloc((size_t)(s->nlogs + s->nsteps + 1), sizeof *p->log_names);
    for (int k = 0; k < s->nlogs; k++) {
        const pv *v = ev_lookup(&c, s->logs[k]);
        if (!v) {
            sg_best b;
            sg_init(&b, s->logs[k]);
            for (int j = 0; j < c.nenv; j++) sg_offer(&b, c.env[j].name);
            char hint[96];
            ag_errorf(err, s->log_locs[k], "'log' names '%s', which the step does not define%s", s->logs[k],
                      sg_hint(&b, hint, sizeof hint));
            goto out;
        }
        if (v->kind != PV_TENSOR || ag_numel(&v->node->shape) != 1 || v->node->batched) {
            ag_errorf(err, s->log_locs[k], "'log' takes single numbers; '%s' is not one", s->logs[k]);
            goto out;
        }
        p->log_names[p->nlogs] = s->logs[k];
        p->logs[p->nlogs++] = v->node;
    }
    for (int k = 0; k < s->nsteps && s->nlogs == 0; k++) {
        const ex_stmt *st = s->steps[k];
        if (st->kind == EX_UPDATE && st->expr->kind == EX_NAME) {
            /* The means of the logged values are fixed arrays (mt_means); an explicit
             * log is held to the same count where the spec is read. */
            if (p->nlogs == MT_MAX_LOGS) {
                ag_errorf(err, st->loc, "more than %d updates, whose losses are logged when 'log' is not given: "
                          "name at most %d values under train.log", MT_MAX_LOGS, MT_MAX_LOGS);
                goto out;
            }
            p->log_names[p->nlogs] = st->expr->text;
            p->logs[p->nlogs++] = ev_lookup(&c, st->expr->text)->node;
        }
    }
    /* Evaluation reads these back from its copies of the step (mt_evaluate: the logged
     * values, and the logits for the accuracy): copies reuse every other buffer. */
    for (int k = 0; k < p->nlogs; k++) ag_keep(g, p->logs[k]);
    for (int k = 0; k < p->nnamed; k++) ag_keep(g, p->named_nodes[k]);
    p->nll_log = -1;
    for (int k = 0; k < p->nlogs && s->nll; k++)
        if (!strcmp(p->log_names[k], s->nll)) p->nll_log = k;
    if (s->nll && p->nll_log < 0) {
        sg_best b;
        sg_init(&b, s->nll);
        for (int k = 0; k < p->nlogs; k++) sg_offer(&b, p->log_names[k]);
        char hint[96];
        ag_errorf(err, s->nll_loc, "'nll' names '%s', which is not a logged value%s", s->nll,
                  sg_hint(&b, hint, sizeof hint));
        goto out;
    }
    rc = AG_OK;
out:
    free(c.env);
    return rc;
}

static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

/* The nodes' periods (node_every): a node runs on the steps where some node that needs
 * it runs, so its period is the gcd of its consumers' and, for an update's loss, of that
 * update's K. A node nothing consumes is needed on every step (a logged or named value,
 * a sample of the data), unless it is a loss. Consumers come after their sources:
 * one pass from the last node back settles every period. */
static void node_periods(pg_program *p)
{
    const ag_graph *g = &p->step;
    p->node_every = ag_xcalloc((size_t)(g->n ? g->n : 1), sizeof *p->node_every);
    int *per = p->node_every; /* 0 until a consumer is seen: gcd's identity */
    for (int k = 0; k < p->nsegs; k++)
        if (p->segs[k].optim >= 0) per[p->segs[k].loss->id] = gcd(per[p->segs[k].loss->id], p->segs[k].every);
    for (int k = g->n - 1; k >= 0; k--) {
        if (!per[k]) per[k] = 1;
        const ag_node *n = g->nodes[k];
        for (int j = 0; j < n->nsrc; j++) per[n->src[j]->id] = gcd(per[n->src[j]->id], per[k]);
    }
    p->log_every = ag_xcalloc((size_t)(p->nlogs ? p->nlogs : 1), sizeof *p->log_every);
    for (int k = 0; k < p->nlogs; k++) p->log_every[k] = per[p->logs[k]->id];
}

/* Every model with parameters is trained by an update, and every optimizer is used. */
static int check_coverage(pg_program *p, ag_error *err)
{
    const sp_spec *s = p->spec;
    for (int k = 0; k < s->noptims; k++) {
        int used = 0;
        for (int j = 0; j < p->nsegs; j++) used |= p->segs[j].optim == k;
        if (!used)
            return ag_errorf(err, s->optims[k].loc, "optimizer '%s' is never used: add 'update %s: LOSS' to the step",
                             s->optims[k].name, s->optims[k].name);
    }
    for (int k = 0; k < p->nmodels; k++) {
        const pg_model *m = &p->models[k];
        if (m->params == 0) continue;
        int trained = 0;
        for (int o = 0; o < s->noptims; o++)
            for (int j = 0; j < s->optims[o].nmodels; j++)
                trained |= strcmp(s->optims[o].models[j], m->spec->name) == 0;
        if (!trained)
            return ag_errorf(err, m->spec->loc,
                             "model '%s' has %lld parameters but no optimizer updates them; add it to an optimizer's 'params'",
                             m->spec->name, (long long)m->params);
    }
    return AG_OK;
}

/* A backward pass through a node computed before an earlier update, whose backward
 * reads a weight that update changed, would mix old activations with new weights.
 * PyTorch refuses this at run time ("modified by an inplace operation"); we refuse
 * it before training, at the node. */
static int check_stale(pg_program *p, int k, ag_error *err)
{
    const pg_segment *sg = &p->segs[k];
    int *idx = ag_xmalloc((size_t)(p->params.n ? p->params.n : 1) * sizeof *idx);
    for (int st = 0; st < sg->bw->nsteps; st++) {
        const ag_node *n = sg->bw->steps[st].node;
        if (n->id >= sg->from) continue;
        for (int j = 0; j < k; j++) {
            const pg_segment *up = &p->segs[j];
            if (up->optim < 0 || up->to <= n->id) continue;
            int np = collect_params(p, &p->spec->optims[up->optim], idx);
            for (int q = 0; q < n->nsrc; q++) {
                if (n->src[q]->op != AG_OP_PARAM) continue;
                for (int r = 0; r < np; r++)
                    if (idx[r] == n->src[q]->i[0]) {
                        const char *changed = p->params.p[idx[r]].name;
                        free(idx);
                        return ag_errorf(err, p->node_stmt[n->id],
                                         "update %s would differentiate a value computed here, before 'update %s' "
                                         "changed %s; compute it again after that update",
                                         p->spec->optims[sg->optim].name, p->spec->optims[up->optim].name,
                                         changed);
                    }
            }
        }
    }
    free(idx);
    return AG_OK;
}

static int plan_step(pg_program *p, ag_error *err)
{
    const sp_spec *s = p->spec;
    int *idx = ag_xmalloc((size_t)(p->params.n ? p->params.n : 1) * sizeof *idx);
    for (int k = 0; k < p->nsegs; k++) {
        pg_segment *sg = &p->segs[k];
        if (sg->optim < 0) continue;
        const sp_optim *o = &s->optims[sg->optim];
        int n = collect_params(p, o, idx);
        ag_error e2;
        sg->bw = ag_backward_plan(&p->step, sg->loss, idx, n, &e2);
        if (!sg->bw) {
            free(idx);
            return ag_errorf(err, sg->loss->loc, "update %s: this loss does not depend on %s%s, the parameters '%s' updates",
                             o->name, o->models[0], o->nmodels > 1 ? " or the other models" : "", o->name);
        }
        if (check_stale(p, k, err)) {
            free(idx);
            return AG_ERR;
        }
    }
    free(idx);
    /* Gradients share buffers within each pass; nothing reads one after it but the
     * parameters' own. */
    p->step.reuse = 1;
    if (pg_plan_impl(p, &p->step, s->data.batch, err)) {
        if (!strncmp(err->msg, "the graph needs", 15)) {
            ag_error e = *err;
            return ag_errorf(err, s->data.loc, "the training step: %s", e.msg);
        }
        return AG_ERR;
    }
    return AG_OK;
}

/* ---------------------------------------------------------------- build -- */

int pg_build(pg_program *p, const sp_spec *s, int rows, int cols, int classes, ag_error *err)
{
    memset(p, 0, sizeof *p);
    p->spec = s;
    p->rows = rows;
    p->cols = cols;
    p->classes = classes;
    rng_seed(&p->rng, s->seed);
    ag_params_init(&p->params);
    if (s->has_schedule) make_schedule(p, &s->schedule);
    p->nmodels = s->nmodels;
    p->models = ag_xcalloc((size_t)s->nmodels, sizeof *p->models);
    for (int k = 0; k < s->nmodels; k++) p->models[k].spec = &s->models[k];

    if (declare_models(p, err)) return AG_ERR;
    declare_ema(p);
    /* Values, gradients and up to three optimizer moments per parameter, checked
     * before any of it is allocated. */
    int64_t per = (int64_t)sizeof(float) * 5;
    int64_t need = p->params.total > INT64_MAX / per ? INT64_MAX : p->params.total * per;
    if (s->max_memory && need > s->max_memory)
        return ag_errorf(err, s->models[0].loc,
                         "the models have %lld parameters: with their gradients and optimizer state %lld MB, "
                         "more than the memory limit of %lld MB (--max-memory)",
                         (long long)p->params.total, (long long)(need >> 20), (long long)(s->max_memory >> 20));
    ag_params_alloc(&p->params);
    init_params(p);
    init_ema(p);
    if (make_optims(p, err)) return AG_ERR;
    ag_graph_init(&p->step, &p->params, &p->rng);
    /* The graphs share what the parameters leave of the limit. */
    p->step.max_bytes = s->max_memory ? s->max_memory - need : 0;
    if (compile_step(p, err) || check_coverage(p, err) || plan_step(p, err)) return AG_ERR;
    node_periods(p);
    p->nsamples = s->nsamples;
    p->samples = ag_xcalloc((size_t)(s->nsamples ? s->nsamples : 1), sizeof *p->samples);
    for (int k = 0; k < s->nsamples; k++)
        if (pg_compile_sample_impl(p, k, err)) return pg_sample_context_impl(s, k, err);
    return AG_OK;
}

void pg_free(pg_program *p)
{
    for (int k = 0; k < p->nmodels; k++) free(p->models[k].slots);
    free(p->models);
    if (p->optims)
        for (int k = 0; k < p->spec->noptims; k++) opt_free(&p->optims[k]);
    free(p->optims);
    free(p->segs);
    free(p->logs);
    free(p->log_names);
    free(p->node_stmt);
    free(p->node_every);
    free(p->log_every);
    free(p->named);
    free(p->named_nodes);
    for (int k = 0; k < 3; k++) free(p->sched[k]);
    free(p->consts);
    for (int k = 0; k < p->nema; k++) {
        free(p->ema[k].runs);
        free(p->ema[k].by_optim);
    }
    free(p->ema);
    ag_graph_free(&p->step);
    for (int k = 0; k < p->copies.n; k++) ag_graph_free(&p->copies.graphs[k]);
    free(p->copies.graphs);
    for (int k = 0; k < p->nsamples; k++) {
        ag_graph_free(&p->samples[k].graph);
        free(p->samples[k].carry_init);
        free(p->samples[k].carry_in);
        free(p->samples[k].carry_out);
        free(p->samples[k].strip);
    }
    free(p->samples);
    ag_params_free(&p->params);
    memset(p, 0, sizeof *p);
}

