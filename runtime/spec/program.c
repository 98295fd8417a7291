/* program.c — a checked spec compiled into the step graph and the sample graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/suggest.h"
#include "eval.h"

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

/* Plans a graph and writes its constant tables, which no forward overwrites. */
static int plan_with_constants(pg_program *p, ag_graph *g, int batch, ag_error *err)
{
    if (ag_graph_plan(g, batch, err)) return AG_ERR;
    for (int k = 0; k < p->nconsts; k++)
        if (p->consts[k].graph == g)
            memcpy(p->consts[k].node->data, p->consts[k].values, (size_t)p->sched_steps * sizeof(float));
    return AG_OK;
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

static void update_ema(pg_program *p, int optim)
{
    for (int k = 0; k < p->nema; k++) {
        const pg_ema *e = &p->ema[k];
        if (!e->by_optim[optim]) continue;
        float d = e->decay;
        if (e->warmup) {
            double n = (double)p->optims[optim].step;
            if ((1 + n) / (10 + n) < d) d = (float)((1 + n) / (10 + n));
        }
        for (int r = 0; r < e->nruns; r++) {
            const float *w = p->params.data + e->runs[r].live;
            float *a = p->params.data + e->runs[r].avg;
            for (int64_t i = 0; i < e->runs[r].len; i++) a[i] = d * a[i] + (1 - d) * w[i];
        }
    }
}

void pg_ema_swap(pg_program *p)
{
    for (int k = 0; k < p->nema; k++)
        for (int r = 0; r < p->ema[k].nruns; r++) {
            float *w = p->params.data + p->ema[k].runs[r].live;
            float *a = p->params.data + p->ema[k].runs[r].avg;
            for (int64_t i = 0; i < p->ema[k].runs[r].len; i++) {
                float t = w[i];
                w[i] = a[i];
                a[i] = t;
            }
        }
}

/* ---------------------------------------------------------------- step -- */

/* Names the data defines for the step. */
static int find_reserved(const char *name)
{
    return !strcmp(name, "pixels") || !strcmp(name, "label") || !strcmp(name, "x") || !strcmp(name, "batch") ||
           !strcmp(name, "tokens");
}

/* The input node of n data items (dim 0 follows the batch when batched), bound by its
 * name: `pixels` [N, H, W] in [0, 255] for images, `tokens` [N, context + 1] holding
 * ids in [0, vocab) for text. */
static ag_node *data_items(pg_program *p, ev_ctx *c, int n, int batched)
{
    const sp_data *d = &p->spec->data;
    ag_graph_set_loc(c->g, d->loc);
    if (d->kind == SP_DATA_TEXT) {
        ag_node *t = ag_input(c->g, "tokens", ag_shape2(n, p->cols), batched);
        ev_bind(c, "tokens", ev_tensor(t, 0, (float)(p->classes - 1), d->loc));
        return t;
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
    *sg = (pg_segment){*seg_from, p->step.n, o, loss.node, NULL};
    *seg_from = p->step.n;
    return AG_OK;
}

/* Nodes made inside a model carry the layer's place; errors about the step want the
 * statement's too. Records loc for the nodes made since the last call. */
static void stmt_of_nodes(pg_program *p, ag_loc loc)
{
    int n = p->step.n;
    p->node_stmt = ag_xrealloc(p->node_stmt, (size_t)(n ? n : 1) * sizeof *p->node_stmt);
    for (int k = p->nstmt_nodes; k < n; k++) p->node_stmt[k] = p->stmt_loc;
    p->nstmt_nodes = n;
    p->stmt_loc = loc;
}

static int compile_step(pg_program *p, ag_error *err)
{
    const sp_spec *s = p->spec;
    ag_graph *g = &p->step;
    ev_ctx c = {.p = p, .g = g};
    int rc = AG_ERR;

    int text = s->data.kind == SP_DATA_TEXT;
    p->pixels = data_items(p, &c, 1, 1);
    p->labels = ag_input(g, "labels", ag_shape1(1), 1);
    if (!text) ev_bind(&c, "label", ev_tensor(p->labels, 0, (float)(p->classes - 1), s->data.loc));
    pv x;
    if (ev_eval(&c, s->data.x, &x, err)) goto out;
    if (x.kind != PV_TENSOR) {
        ag_errorf(err, s->data.x->loc, "'x' must be a tensor computed from %s", text ? "tokens" : "pixels");
        goto out;
    }
    ev_bind(&c, "x", x);

    p->segs = ag_xcalloc((size_t)s->nsteps + 1, sizeof *p->segs);
    int seg_from = 0;
    for (int k = 0; k < s->nsteps; k++) {
        const ex_stmt *st = s->steps[k];
        stmt_of_nodes(p, st->loc);
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
            if (find_reserved(st->names[j])) {
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
    stmt_of_nodes(p, (ag_loc){0});
    if (seg_from < g->n) p->segs[p->nsegs++] = (pg_segment){seg_from, g->n, -1, NULL, NULL};

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
            p->log_names[p->nlogs] = st->expr->text;
            p->logs[p->nlogs++] = ev_lookup(&c, st->expr->text)->node;
        }
    }
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
    if (plan_with_constants(p, &p->step, s->data.batch, err)) {
        if (!strncmp(err->msg, "the graph needs", 15)) {
            ag_error e = *err;
            return ag_errorf(err, s->data.loc, "the training step: %s", e.msg);
        }
        return AG_ERR;
    }
    return AG_OK;
}

/* -------------------------------------------------------------- sample -- */

/* Assignments of a sample section's steps. */
static int compile_assignments(ev_ctx *c, ex_stmt *const *steps, int n, ag_error *err)
{
    for (int k = 0; k < n; k++) {
        const ex_stmt *st = steps[k];
        if (st->kind != EX_ASSIGN)
            return ag_errorf(err, st->loc, "a sample step assigns names; updates belong to train.step");
        pv v[EV_MAX_OUT];
        int nv;
        if (ev_eval_multi(c, st->expr, v, &nv, err)) return AG_ERR;
        if ((size_t)nv != st->nnames)
            return ag_errorf(err, st->loc, "%zu name%s on the left, but the right side gives %d value%s",
                             st->nnames, st->nnames == 1 ? "" : "s", nv, nv == 1 ? "" : "s");
        for (size_t j = 0; j < st->nnames; j++) ev_bind(c, st->names[j], v[j]);
    }
    return AG_OK;
}

/* What the run has planned so far: parameters with their state, and the graphs. */
static int64_t need_bytes(const pg_program *p)
{
    int64_t n = p->params.total * (int64_t)sizeof(float) * 5 + p->step.slab_floats * (int64_t)sizeof(float);
    for (int k = 0; k < p->nsamples; k++) n += p->samples[k].graph.slab_floats * (int64_t)sizeof(float);
    return n;
}

/* A loop bound: an expression that must come to a whole number. */
static int loop_bound(ev_ctx *c, const ex_node *e, const char *what, int *out, ag_error *err)
{
    pv v;
    if (ev_eval(c, e, &v, err)) return AG_ERR;
    if (v.kind != PV_NUM || v.num != floor(v.num) || fabs(v.num) > (1 << 24))
        return ag_errorf(err, e->loc, "loop: '%s' must come to a whole number in [-16777216, 16777216]%s", what,
                         v.kind == PV_NUM ? "" : ", not a tensor");
    *out = (int)v.num;
    return AG_OK;
}

/* The names a loop's statements assign that exist before it are carried from one
 * pass to the next: each gets an input node the loop reads, written from the value
 * the pass ends with. */
static int compile_loop(pg_program *p, pg_sampler *q, ev_ctx *c, ag_error *err)
{
    const sp_sample *sm = q->spec;
    ag_graph *g = c->g;
    if (loop_bound(c, sm->loop_from, "from", &q->loop_from, err) ||
        loop_bound(c, sm->loop_to, "to", &q->loop_to, err))
        return AG_ERR;
    q->loop_by = q->loop_to >= q->loop_from ? 1 : -1;
    if (sm->loop_by && loop_bound(c, sm->loop_by, "by", &q->loop_by, err)) return AG_ERR;
    if (q->loop_by == 0 || ((int64_t)q->loop_to - q->loop_from) / q->loop_by < 0)
        return ag_errorf(err, sm->loop_loc, "loop: 'by' %d never goes from %d to %d", q->loop_by, q->loop_from,
                         q->loop_to);
    int cap = 0;
    for (int k = 0; k < sm->nloop_steps; k++) cap += (int)sm->loop_steps[k]->nnames;
    q->carry_init = ag_xcalloc((size_t)(cap ? cap : 1), sizeof *q->carry_init);
    q->carry_in = ag_xcalloc((size_t)(cap ? cap : 1), sizeof *q->carry_in);
    q->carry_out = ag_xcalloc((size_t)(cap ? cap : 1), sizeof *q->carry_out);
    const char **names = ag_xcalloc((size_t)(cap ? cap : 1), sizeof *names);
    ag_graph_set_loc(g, sm->loop_loc);
    for (int k = 0; k < sm->nloop_steps; k++)
        for (size_t j = 0; j < sm->loop_steps[k]->nnames; j++) {
            const char *name = sm->loop_steps[k]->names[j];
            const pv *v = ev_lookup(c, name);
            int seen = 0;
            for (int i = 0; i < q->ncarry; i++) seen |= !strcmp(names[i], name);
            if (!v || seen || v->kind != PV_TENSOR) continue;
            pv carried = *v;
            q->carry_init[q->ncarry] = v->node;
            carried.node = ag_input(g, name, v->node->shape, 0);
            carried.lo = -INFINITY, carried.hi = INFINITY; /* the loop may move it anywhere */
            q->carry_in[q->ncarry] = carried.node;
            names[q->ncarry++] = name;
            ev_bind(c, name, carried);
        }
    int lo = q->loop_from < q->loop_to ? q->loop_from : q->loop_to;
    int hi = q->loop_from < q->loop_to ? q->loop_to : q->loop_from;
    q->loop_var = ag_input(g, sm->loop_var, ag_shape1(q->count), 0);
    ev_bind(c, sm->loop_var, ev_tensor(q->loop_var, (float)lo, (float)hi, sm->loop_loc));
    q->loop_begin = g->n;
    int rc = compile_assignments(c, sm->loop_steps, sm->nloop_steps, err);
    q->loop_end = g->n;
    for (int k = 0; k < q->ncarry && rc == AG_OK; k++) {
        const pv *v = ev_lookup(c, names[k]);
        if (v->kind != PV_TENSOR || !ag_shape_eq(&v->node->shape, &q->carry_in[k]->shape)) {
            char a[64], b[64];
            rc = ag_errorf(err, sm->loop_loc, "loop: '%s' is %s before the loop but %s after a pass", names[k],
                           ag_shape_str(&q->carry_in[k]->shape, 0, a, sizeof a),
                           v->kind == PV_TENSOR ? ag_shape_str(&v->node->shape, 0, b, sizeof b) : "not a tensor");
            break;
        }
        q->carry_out[k] = v->node;
        /* After the loop the name is its carried value. */
        ev_bind(c, names[k], ev_tensor(q->carry_in[k], -INFINITY, INFINITY, sm->loop_loc));
    }
    free(names);
    return rc;
}

/* A text input: token ids [n, length], one row per draw, length its bytes. */
static int text_input(pg_program *p, pg_sampler *q, ev_ctx *c, int j, ag_error *err)
{
    const sp_input *in = &q->spec->inputs[j];
    if (p->spec->data.kind != SP_DATA_TEXT)
        return ag_errorf(err, in->loc, "input '%s' is text, but the data are images; text needs dataset: text "
                         "and its vocabulary", in->name);
    size_t len = strlen(in->text);
    if (len == 0 && in->given)
        return ag_errorf(err, (ag_loc){0}, "%s: input '%s' is empty: give at least one character", in->given, in->name);
    if (len == 0) return ag_errorf(err, in->loc, "input '%s' is empty: give at least one character", in->name);
    if (len > 1 << 20) return ag_errorf(err, in->loc, "input '%s' is longer than 1048576 bytes", in->name);
    q->inputs[j] = ag_input(c->g, in->name, ag_shape2(q->count, (int)len), 0);
    ev_bind(c, in->name, ev_tensor(q->inputs[j], 0, (float)(p->classes - 1), in->loc));
    return AG_OK;
}

/* Whether section k is the one -n counts (the drawn one, when -n is given). */
static int sample_counted(const sp_spec *s, int k) { return s->sample_count > 0 && k == s->sample_index; }

static int compile_sample(pg_program *p, int k, ag_error *err)
{
    const sp_spec *s = p->spec;
    const sp_sample *sm = &s->samples[k];
    pg_sampler *q = &p->samples[k];
    ag_graph *g = &q->graph;
    ag_graph_init(g, &p->params, &p->sample_rng);
    g->training = 0;
    g->max_bytes = s->max_memory ? s->max_memory - need_bytes(p) : 0;
    q->spec = sm;
    int counted = sample_counted(s, k);
    q->count = counted ? s->sample_count : sm->count;
    ev_ctx c = {.p = p, .g = g};
    /* n: how many to draw; test_x and test_label: the test split's first n images,
     * through the data's transform, for reconstructions and interpolations. */
    ev_bind(&c, "n", (pv){.kind = PV_NUM, .num = q->count, .loc = sm->loc});
    q->pixels = data_items(p, &c, q->count, 0);
    q->labels = ag_input(g, "labels", ag_shape1(q->count), 0);
    /* The section's inputs: numbers are constants; images and text are written per
     * draw. */
    int rc = AG_OK;
    for (int j = 0; j < sm->ninputs && rc == AG_OK; j++) {
        const sp_input *in = &sm->inputs[j];
        if (in->kind == SP_INPUT_NUMBER) {
            ev_bind(&c, in->name, (pv){.kind = PV_NUM, .num = in->number, .loc = in->loc});
            continue;
        }
        ag_graph_set_loc(g, in->loc);
        if (in->kind == SP_INPUT_TEXT) {
            rc = text_input(p, q, &c, j, err);
            continue;
        }
        q->inputs[j] = ag_input(g, in->name, ag_shape3(q->count, p->rows, p->cols), 0);
        ev_bind(&c, in->name, ev_tensor(q->inputs[j], 0, 255, in->loc));
    }
    ag_graph_set_loc(g, s->data.loc);
    pv test_x;
    if (rc == AG_OK) rc = ev_eval(&c, s->data.x, &test_x, err);
    if (rc == AG_OK) {
        ev_bind(&c, "test_x", test_x);
        if (s->data.kind == SP_DATA_IMAGES)
            ev_bind(&c, "test_label", ev_tensor(q->labels, 0, (float)(p->classes - 1), s->data.loc));
        rc = compile_assignments(&c, sm->steps, sm->nsteps, err);
    }
    if (rc == AG_OK && sm->has_loop) rc = compile_loop(p, q, &c, err);
    pv img;
    if (rc == AG_OK) rc = ev_eval(&c, sm->text ? sm->text : sm->image, &img, err);
    free(c.env);
    if (rc) return AG_ERR;
    if (sm->text) {
        if (img.kind != PV_TENSOR || img.node->shape.ndim != 2)
            return ag_errorf(err, sm->text->loc, "%s: 'text' must give token ids [N, L], one row per text",
                             sm->name);
        if (s->data.kind != SP_DATA_TEXT)
            return ag_errorf(err, sm->text->loc, "%s: 'text' needs dataset: text, whose vocabulary turns "
                             "token ids into bytes", sm->name);
        q->image = img.node;
        q->text = 1;
        q->images = img.node->shape.d[0];
        return plan_with_constants(p, g, 1, err);
    }
    if (img.kind != PV_TENSOR || img.node->shape.ndim < 2)
        return ag_errorf(err, sm->image->loc, "%s: 'image' must give a batch of images, [N, ...]", sm->name);
    int64_t per = ag_numel(&img.node->shape) / img.node->shape.d[0];
    int64_t px = (int64_t)p->rows * p->cols;
    if (per != px && per != 3 * px)
        return ag_errorf(err, sm->image->loc,
                         "%s: each image has %lld values, but the data's images are %dx%d (%lld values)",
                         sm->name, (long long)per, p->rows, p->cols, (long long)px);
    q->image = img.node;
    q->channels = (int)(per / px);
    q->images = img.node->shape.d[0];
    if (sm->strip_every) {
        /* compile_loop made sure that the loop makes at least one pass. */
        int passes = (q->loop_to - q->loop_from) / q->loop_by + 1;
        q->strip_frames = 2 + (passes - 1) / sm->strip_every;
        q->strip = ag_xcalloc((size_t)(q->strip_frames * per), sizeof *q->strip);
    }
    /* A count from the command line (-n) lays the grid out anew. */
    q->grid_rows = counted ? 0 : sm->rows;
    q->grid_cols = counted ? 0 : sm->cols;
    if (!q->grid_cols) {
        q->grid_cols = (int)ceil(sqrt((double)q->images));
        q->grid_rows = (q->images + q->grid_cols - 1) / q->grid_cols;
    }
    if ((int64_t)q->grid_rows * q->grid_cols < q->images)
        return ag_errorf(err, sm->loc, "%s: %d images do not fit a %dx%d grid", sm->name, q->images,
                         q->grid_rows, q->grid_cols);
    if (sm->has_range) {
        q->lo = sm->lo, q->hi = sm->hi;
    } else if (isfinite(img.lo) && isfinite(img.hi) && img.lo < img.hi) {
        q->lo = img.lo, q->hi = img.hi;
    } else {
        q->lo = q->hi = 0; /* from the values, at each sampling */
    }
    return plan_with_constants(p, g, 1, err);
}

/* ---------------------------------------------------------------- build -- */

/* A section that builds with its own count and defaults may fail with the command
 * line's -n or inputs: the message ends with those, as typed ("(sample section
 * 'sample' with n = 3, --length 0)"), since its place is the spec's expression. */
static int sample_context(const sp_spec *s, int k, ag_error *err)
{
    const sp_sample *sm = &s->samples[k];
    char what[512];
    size_t used = 0;
    if (sample_counted(s, k)) used += (size_t)snprintf(what, sizeof what, ", n = %d", s->sample_count);
    for (int j = 0; j < sm->ninputs && used < sizeof what; j++) {
        const char *given = sm->inputs[j].given;
        /* A message about the value itself names it already. */
        if (given && !strstr(err->msg, given)) used += (size_t)snprintf(what + used, sizeof what - used, ", %s", given);
    }
    return used ? ag_error_addf(err, " (sample section '%s' with %s)", sm->name, what + 2) : AG_ERR;
}

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
    p->nsamples = s->nsamples;
    p->samples = ag_xcalloc((size_t)(s->nsamples ? s->nsamples : 1), sizeof *p->samples);
    for (int k = 0; k < s->nsamples; k++)
        if (compile_sample(p, k, err)) return sample_context(s, k, err);
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
    for (int k = 0; k < p->ncopies; k++) ag_graph_free(&p->copies[k]);
    free(p->copies);
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

/* -------------------------------------------------------------- running -- */

int pg_train_step(pg_program *p, int batch)
{
    ag_graph *g = &p->step;
    ag_graph_set_batch(g, batch);
    for (int k = 0; k < p->nsegs; k++) {
        const pg_segment *sg = &p->segs[k];
        if (ag_forward(g, sg->from, sg->to)) return AG_ERR;
        if (sg->optim < 0) continue;
        ag_backward(g, sg->bw);
        opt_optimizer *o = &p->optims[sg->optim];
        p->bad_seg = k;
        /* No update from a non-finite loss or gradient: it is left out, and so are the
         * statements after it, which would see it made. */
        if (p->spec->on_nan_skip && (!isfinite(sg->loss->data[0]) || !opt_grads_finite(o))) return PG_SKIPPED;
        opt_step(o);
        if (p->spec->on_nan_skip && !opt_params_finite(o)) return PG_OVERFLOWED;
        update_ema(p, sg->optim);
    }
    return AG_OK;
}

int pg_eval_step(pg_program *p, int batch)
{
    ag_graph *g = &p->step;
    ag_graph_set_batch(g, batch);
    g->training = 0;
    int rc = ag_forward(g, 0, g->n);
    g->training = 1;
    return rc;
}

int pg_eval_graphs(pg_program *p, int want, ag_graph **out)
{
    AG_ASSERT(want >= 1);
    if (want - 1 > p->ncopies && !p->copies_refused) {
        p->copies = ag_xrealloc(p->copies, (size_t)(want - 1) * sizeof *p->copies);
        int64_t planned = need_bytes(p), limit = p->spec->max_memory, used = 0;
        for (int k = 0; k < p->ncopies; k++) used += p->copies[k].slab_floats * (int64_t)sizeof(float);
        while (p->ncopies < want - 1) {
            /* The copies take at most a quarter of what the run planned without them.
             * That admits an MLP's (a VAE's, 1.3 MB at batch 64), whose small sgemms
             * gain most from running whole, and not a convolutional network's (the
             * DDPM's, 250 MB), whose ops the pool cuts by image anyway. */
            int64_t left = planned / 4 - used;
            if (limit && limit - planned - used < left) left = limit - planned - used;
            ag_error ignored;
            if (left <= 0 || ag_graph_copy(&p->copies[p->ncopies], &p->step, NULL, left, &ignored)) {
                p->copies_refused = 1;
                break;
            }
            used += p->copies[p->ncopies++].slab_floats * (int64_t)sizeof(float);
        }
    }
    int n = 1 + (want - 1 < p->ncopies ? want - 1 : p->ncopies);
    out[0] = &p->step;
    for (int k = 1; k < n; k++) out[k] = &p->copies[k - 1];
    return n;
}

/* The first image, as the image expression last gave it, into the strip. */
static void strip_frame(pg_sampler *q, int frame)
{
    int64_t per = ag_numel(&q->image->shape) / q->images;
    memcpy(q->strip + frame * per, q->image->data, (size_t)per * sizeof *q->strip);
}

int pg_sample(pg_program *p, int k, uint64_t seed, ag_error *err)
{
    /* The same seed draws the same noise: the grids of successive epochs show one
     * set of latent points as training moves them. */
    rng_seed(&p->sample_rng, seed);
    pg_ema_swap(p);
    pg_sampler *q = &p->samples[k];
    ag_graph *g = &q->graph;
    const sp_sample *sm = q->spec;
    int rc = AG_OK;
    if (!sm->has_loop) {
        rc = ag_forward(g, 0, g->n);
    } else {
        rc = ag_forward(g, 0, q->loop_begin);
        for (int j = 0; j < q->ncarry; j++)
            memcpy(q->carry_in[j]->data, q->carry_init[j]->data, (size_t)ag_numel(&q->carry_in[j]->shape) * sizeof(float));
        /* A frame of the strip runs the image expression on the carried values, as
         * it runs after the loop. */
        int frame = 0, pass = 0;
        if (rc == AG_OK && q->strip && (rc = ag_forward(g, q->loop_end, g->n)) == AG_OK)
            strip_frame(q, frame++);
        for (int v = q->loop_from; rc == AG_OK && (q->loop_by > 0 ? v <= q->loop_to : v >= q->loop_to);
             v += q->loop_by) {
            for (int j = 0; j < q->count; j++) q->loop_var->data[j] = (float)v;
            rc = ag_forward(g, q->loop_begin, q->loop_end);
            for (int j = 0; j < q->ncarry; j++)
                memcpy(q->carry_in[j]->data, q->carry_out[j]->data,
                       (size_t)ag_numel(&q->carry_in[j]->shape) * sizeof(float));
            if (rc == AG_OK && q->strip && ++pass % sm->strip_every == 0 && frame < q->strip_frames - 1 &&
                (rc = ag_forward(g, q->loop_end, g->n)) == AG_OK)
                strip_frame(q, frame++);
        }
        if (rc == AG_OK) rc = ag_forward(g, q->loop_end, g->n);
        if (rc == AG_OK && q->strip) {
            AG_ASSERT(frame == q->strip_frames - 1);
            strip_frame(q, frame);
        }
    }
    pg_ema_swap(p);
    if (rc) *err = g->err;
    return rc;
}

int64_t pg_model_params(const pg_program *p, int k) { return p->models[k].params; }
int64_t pg_model_flops(const pg_program *p, int k) { return p->models[k].flops; }

static void print_count(FILE *out, int64_t n)
{
    /* 559,632: thousands separated, as a reader counts them. */
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%lld", (long long)n);
    for (int k = 0; k < len; k++) {
        fputc(buf[k], out);
        if ((len - k - 1) % 3 == 0 && k != len - 1) fputc(',', out);
    }
}

void pg_print_summary(const pg_program *p, FILE *out)
{
    char buf[64];
    for (int k = 0; k < p->nmodels; k++) {
        const pg_model *m = &p->models[k];
        fprintf(out, "model %s", m->spec->name);
        for (int j = 0; j < m->spec->ninputs; j++) {
            ag_shape s = m->spec->inputs[j];
            s.ndim++;
            for (int d = s.ndim - 1; d > 0; d--) s.d[d] = s.d[d - 1];
            fprintf(out, "%s%s %s", j ? ", " : " (", m->spec->input_names[j], ag_shape_str(&s, 1, buf, sizeof buf));
        }
        fprintf(out, ")\n");
        fprintf(out, "  %-28s %-16s %12s %12s\n", "layer", "output", "params", "FLOPs");
        for (int j = 0; j < m->nslots; j++) {
            const ly_slot *s = &m->slots[j];
            fprintf(out, "  %-28s %-16s %12lld %12lld\n", s->label,
                    ag_shape_str(&s->out, s->out_batched, buf, sizeof buf), (long long)s->params,
                    (long long)s->flops);
        }
        fprintf(out, "  total: ");
        print_count(out, m->params);
        fprintf(out, " parameters, ");
        print_count(out, m->flops);
        fprintf(out, " FLOPs per sample\n");
        if (m->spec->has_ema)
            fprintf(out, "  ema: decay %g%s, as ema.%s.*\n", m->spec->ema_decay,
                    m->spec->ema_warmup ? " with warmup" : "", m->spec->name);
        fputc('\n', out);
    }
    const sp_spec *s = p->spec;
    int64_t params = 0, flops = 0;
    for (int k = 0; k < p->nmodels; k++) params += p->models[k].params, flops += p->models[k].flops;
    fprintf(out, "all models: ");
    print_count(out, params);
    fprintf(out, " parameters, ");
    print_count(out, flops);
    fprintf(out, " FLOPs per sample\n\n");
    fprintf(out, "step: %d nodes, %lld floats planned for batch %d\n", p->step.n,
            (long long)p->step.slab_floats, s->data.batch);
    for (int k = 0; k < p->nsegs; k++) {
        const pg_segment *sg = &p->segs[k];
        if (sg->optim < 0)
            fprintf(out, "  forward %d nodes\n", sg->to - sg->from);
        else
            fprintf(out, "  forward %d nodes, then update %s: backward through %d nodes\n", sg->to - sg->from,
                    s->optims[sg->optim].name, sg->bw->nsteps);
    }
    /* What training allocates, before the data: so that a bigger architecture's cost is
     * seen before it is run. */
    int64_t state = 0, samples = 0;
    for (int k = 0; k < s->noptims; k++) state += opt_state_floats(&p->optims[k]);
    for (int k = 0; k < p->nsamples; k++) samples += p->samples[k].graph.slab_floats;
    const double mb = (double)sizeof(float) / (1 << 20);
    fprintf(out, "\nmemory planned: %.1f MB of parameters, %.1f of gradients, %.1f of optimizer state, %.1f for the step, "
            "%.1f for %d sample section%s: %.1f MB\n", p->params.total * mb, p->params.total * mb, state * mb,
            p->step.slab_floats * mb, samples * mb, p->nsamples, p->nsamples == 1 ? "" : "s",
            (2 * p->params.total + state + p->step.slab_floats + samples) * mb);
}

int pg_sample_reads_data(const pg_program *p, int k)
{
    const pg_sampler *q = &p->samples[k];
    const ag_graph *g = &q->graph;
    char *seen = ag_xcalloc((size_t)g->n, 1);
    ag_node **todo = ag_xmalloc((size_t)g->n * sizeof *todo);
    int n = 0, reads = 0;
    todo[n++] = q->image;
    seen[q->image->id] = 1;
    while (n > 0 && !reads) {
        ag_node *x = todo[--n];
        reads = x == q->pixels || x == q->labels;
        ag_node *next[AG_MAX_SRC + 2];
        int m = 0;
        for (int s = 0; s < x->nsrc; s++) next[m++] = x->src[s];
        /* A carried value starts from carry_init and comes back from carry_out. */
        for (int c = 0; c < q->ncarry; c++)
            if (q->carry_in[c] == x) {
                next[m++] = q->carry_init[c];
                next[m++] = q->carry_out[c];
                break;
            }
        for (int j = 0; j < m; j++)
            if (!seen[next[j]->id]) {
                seen[next[j]->id] = 1;
                todo[n++] = next[j];
            }
    }
    free(seen);
    free(todo);
    return reads;
}
