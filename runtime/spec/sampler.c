/* sampler.c — a spec's sample sections compiled: each a forward-only graph with its
 * inputs, an optional loop whose values carry from pass to pass, and its grid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"

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
    ag_graph_loop(g, q->loop_begin, q->loop_end);
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
        /* pg_sample copies both after the runs that make them. */
        ag_keep(g, q->carry_out[k]);
        ag_keep(g, q->carry_init[k]);
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

/* label: one class per image, [images]; values that its known range puts outside the
 * data's classes are refused here, the rest where a draw gives them (sa_labels). */
static int compile_label(const pg_program *p, pg_sampler *q, const pv *v, ag_error *err)
{
    const sp_sample *sm = q->spec;
    if (v->kind != PV_TENSOR || v->node->shape.ndim != 1 || v->node->shape.d[0] != q->images) {
        char got[64];
        if (v->kind == PV_TENSOR) ag_shape_str(&v->node->shape, 0, got, sizeof got);
        else snprintf(got, sizeof got, "a number");
        return ag_errorf(err, sm->label->loc, "%s: 'label' must give one class per image, [%d], not %s",
                         sm->name, q->images, got);
    }
    if (isfinite(v->lo) && isfinite(v->hi) && (v->lo < 0 || v->hi > p->classes - 1))
        return ag_errorf(err, sm->label->loc, "%s: 'label' gives values in [%g, %g], but the data's classes are "
                         "0 to %d", sm->name, v->lo, v->hi, p->classes - 1);
    q->label = v->node;
    ag_keep(&q->graph, q->label);
    return AG_OK;
}

/* Whether section k is the one -n counts (the drawn one, when -n is given). */
static int sample_counted(const sp_spec *s, int k) { return s->sample_count > 0 && k == s->sample_index; }

int pg_compile_sample_impl(pg_program *p, int k, ag_error *err)
{
    const sp_spec *s = p->spec;
    const sp_sample *sm = &s->samples[k];
    pg_sampler *q = &p->samples[k];
    ag_graph *g = &q->graph;
    ag_graph_init(g, &p->params, &p->sample_rng);
    g->training = 0;
    g->reuse = 1; /* forward only: what the runs read back is kept below */
    g->max_bytes = s->max_memory ? s->max_memory - pg_planned_bytes_impl(p) : 0;
    q->spec = sm;
    int counted = sample_counted(s, k);
    q->count = counted ? s->sample_count : sm->count;
    ev_ctx c = {.p = p, .g = g};
    /* n: how many to draw; test_x and test_label: the test split's first n images,
     * through the data's transform, for reconstructions and interpolations. */
    ev_bind(&c, "n", (pv){.kind = PV_NUM, .num = q->count, .loc = sm->loc});
    q->pixels = pg_data_items_impl(p, &c, q->count, 0);
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
        /* A features section runs over a split's images, chunk by chunk: they are its x
         * and label, as in the step; the others see the test split's first n. */
        ev_bind(&c, sm->features ? "x" : "test_x", test_x);
        if (s->data.kind != SP_DATA_TEXT)
            ev_bind(&c, sm->features ? "label" : "test_label",
                    ev_tensor(q->labels, 0, (float)(p->classes - 1), s->data.loc));
        rc = compile_assignments(&c, sm->steps, sm->nsteps, err);
    }
    if (rc == AG_OK && sm->has_loop) rc = compile_loop(p, q, &c, err);
    pv img, label = {0};
    const ex_node *result = sm->features ? sm->features : sm->text ? sm->text : sm->image;
    if (rc == AG_OK) rc = ev_eval(&c, result, &img, err);
    if (rc == AG_OK && sm->label) {
        ag_graph_set_loc(g, sm->label->loc);
        rc = ev_eval(&c, sm->label, &label, err);
    }
    free(c.env);
    if (rc) return AG_ERR;
    if (sm->features) {
        if (img.kind != PV_TENSOR || img.node->shape.ndim != 2 || img.node->shape.d[0] != q->count) {
            char shape[64] = "a number";
            if (img.kind == PV_TENSOR) ag_shape_str(&img.node->shape, 0, shape, sizeof shape);
            return ag_errorf(err, sm->features->loc, "%s: 'features' must give [n, F], one row of F values per "
                             "image (n = %d), got %s", sm->name, q->count, shape);
        }
        q->image = img.node;
        ag_keep(g, q->image);
        q->features = 1;
        q->images = q->count;
        return pg_plan_impl(p, g, 1, err);
    }
    if (sm->text) {
        if (img.kind != PV_TENSOR || img.node->shape.ndim != 2)
            return ag_errorf(err, sm->text->loc, "%s: 'text' must give token ids [N, L], one row per text",
                             sm->name);
        if (s->data.kind != SP_DATA_TEXT)
            return ag_errorf(err, sm->text->loc, "%s: 'text' needs dataset: text, whose vocabulary turns "
                             "token ids into bytes", sm->name);
        q->image = img.node;
        ag_keep(g, q->image);
        q->text = 1;
        q->images = img.node->shape.d[0];
        return pg_plan_impl(p, g, 1, err);
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
    ag_keep(g, q->image);
    q->channels = (int)(per / px);
    q->images = img.node->shape.d[0];
    if (sm->label && compile_label(p, q, &label, err)) return AG_ERR;
    if (sm->strip_every) {
        /* compile_loop made sure that the loop makes at least one pass. */
        int passes = (q->loop_to - q->loop_from) / q->loop_by + 1;
        q->strip_frames = 2 + (passes - 1) / sm->strip_every;
        q->strip = ag_xcalloc((size_t)(q->strip_frames * per), sizeof *q->strip);
    }
    /* A count from the command line (-n) lays the grid out anew, as square as fits;
     * a section with label: keeps its columns (a class each, as cycle(n, 10) gives
     * them) and takes the rows it needs. */
    q->grid_rows = counted ? 0 : sm->rows;
    q->grid_cols = counted && !sm->label ? 0 : sm->cols;
    if (!q->grid_cols) q->grid_cols = (int)ceil(sqrt((double)q->images));
    if (!q->grid_rows) q->grid_rows = (q->images + q->grid_cols - 1) / q->grid_cols;
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
    return pg_plan_impl(p, g, 1, err);
}

/* A section's message ends with the command line's -n and inputs, as typed, since its
 * place is the spec's expression. */
int pg_sample_context_impl(const sp_spec *s, int k, ag_error *err)
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

