/* diverge.c — a run whose values turn NaN or infinite: where, and whether to go on. */
#include "run.h"

#include <math.h>
#include <stdio.h>

#include "aigc/dist.h"

int tr_nonfinite_log(const pg_program *p, const float *values, int *which)
{
    for (int k = 0; k < p->nlogs; k++)
        if (pg_log_made(p, k) && !isfinite(values[k])) {
            *which = k;
            return 1;
        }
    return 0;
}

/* The message `head`, placed at the statement that made the first non-finite value
 * among the step's nodes [0, limit) (and its layer, inside a model); at `fallback` when
 * none did. */
static int nonfinite_at(const tr_run_state *st, int limit, ag_loc fallback, const char *head, ag_error *err)
{
    const pg_program *p = st->p;
    const ag_graph *g = &p->step;
    for (int k = 0; k < limit; k++) {
        const ag_node *n = g->nodes[k];
        int64_t len = ag_numel(&n->shape);
        int finite = 1;
        for (int64_t j = 0; j < len && finite && n->data; j++) finite = isfinite(n->data[j]);
        if (finite) continue;
        char where[512] = "";
        if (n->loc.file && (n->loc.line != p->node_stmt[k].line || n->loc.file != p->node_stmt[k].file))
            snprintf(where, sizeof where, " (the layer at %s:%d:%d)", n->loc.file, n->loc.line, n->loc.col);
        return ag_errorf(err, p->node_stmt[k], "%s; the first non-finite value comes from %s in this statement%s",
                         head, ag_op_defs[n->op]->name, where);
    }
    return ag_errorf(err, fallback, "%s", head);
}

static const char *nonfinite_name(float v)
{
    return isnan(v) ? "NaN" : v > 0 ? "+infinity" : "-infinity";
}

/* "opt_D lr 0.0002, opt_G lr 0.0002": the rates in force, for a message. */
static void learning_rates(const pg_program *p, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int k = 0; k < p->spec->noptims && used < n; k++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s lr %g", k ? ", " : "", p->spec->optims[k].name,
                                 p->optims[k].groups[0].lr);
}

/* Names the logged value, and the first node of the step that made a non-finite value.
 * After finite steps the updates made it so: the learning rates are named too. */
int tr_diverged(tr_run_state *st, int bad, ag_error *err)
{
    const pg_program *p = st->p;
    char head[1024], lrs[512];
    int k = snprintf(head, sizeof head, "training diverged at epoch %d, step %lld: '%s' is %s", st->epoch,
                     (long long)st->step, p->log_names[bad], nonfinite_name(st->logged[bad]));
    if (st->step > 1) {
        learning_rates(p, lrs, sizeof lrs);
        snprintf(head + k, sizeof head - (size_t)k, " after %lld finite steps (lower the learning rate: %s)",
                 (long long)st->step - 1, lrs);
    }
    dp_set_shared_error();
    return nonfinite_at(st, p->step.n, (ag_loc){0}, head, err);
}

/* The update statement of segment seg (segments end at the updates, in order). */
static const ex_stmt *update_stmt(const pg_program *p, int seg)
{
    int nth = 0;
    for (int k = 0; k < seg; k++) nth += p->segs[k].optim >= 0;
    for (int k = 0; k < p->spec->nsteps; k++)
        if (p->spec->steps[k]->kind == EX_UPDATE && nth-- == 0) return p->spec->steps[k];
    AG_ASSERT(!"a segment without its update statement");
    return NULL;
}

/* train.on_nan: skip: the batch made no update from segment p->bad_seg on. Counted; an
 * error once more than max_skipped batches in a row were skipped. */
int tr_skip_batch(tr_run_state *st, ag_error *err)
{
    const pg_program *p = st->p;
    st->rec.skipped++;
    if (++st->rec.skipped_in_row <= p->spec->max_skipped) return AG_OK;
    dp_set_shared_error();
    const pg_segment *sg = &p->segs[p->bad_seg];
    const ex_stmt *u = update_stmt(p, p->bad_seg);
    float v = sg->loss->data[0];
    char head[512];
    int k = snprintf(head, sizeof head,
                     "training diverged at epoch %d, step %lld: %lld batches in a row skipped (max_skipped %d); ",
                     st->epoch, (long long)st->step, (long long)st->rec.skipped_in_row, p->spec->max_skipped);
    if (isfinite(v))
        snprintf(head + k, sizeof head - (size_t)k, "a gradient of 'update %s' is not finite", u->names[0]);
    else
        snprintf(head + k, sizeof head - (size_t)k, "the loss of 'update %s' is %s", u->names[0], nonfinite_name(v));
    return nonfinite_at(st, sg->to, u->loc, head, err);
}

/* Finite loss and gradients made a non-finite weight: no batch to skip can undo it. */
int tr_overflowed(tr_run_state *st, ag_error *err)
{
    const ex_stmt *u = update_stmt(st->p, st->p->bad_seg);
    dp_set_shared_error();
    return ag_errorf(err, u->loc,
                     "training diverged at epoch %d, step %lld: 'update %s' made a weight non-finite from a "
                     "finite loss and gradients; lower the learning rate",
                     st->epoch, (long long)st->step, u->names[0]);
}

/* An op failed in the step (p->step.err). After finite steps, weights that are no longer
 * finite are the cause, whatever the op says (bce meets NaN as "outside [0, 1]"): the
 * message says so first and points at the learning rates. */
int tr_step_failed(tr_run_state *st, ag_error *err)
{
    const pg_program *p = st->p;
    const ag_params *ps = &p->params;
    int bad = -1;
    for (int k = 0; k < ps->n && bad < 0; k++) {
        const float *w = ps->data + ps->p[k].offset;
        int64_t len = ag_numel(&ps->p[k].shape);
        for (int64_t j = 0; j < len && bad < 0; j++)
            if (!isfinite(w[j])) bad = k;
    }
    if (bad < 0 || st->step == 0)
        return ag_errorf(err, (ag_loc){0}, "%s (epoch %d, step %lld)", p->step.err.msg, st->epoch,
                         (long long)st->step + 1);
    char lrs[512];
    learning_rates(p, lrs, sizeof lrs);
    return ag_errorf(err, (ag_loc){0},
                     "training diverged at epoch %d, step %lld: %s is not finite after %lld finite steps; lower "
                     "the learning rate (%s)\n(then: %s)",
                     st->epoch, (long long)st->step + 1, ps->p[bad].name, (long long)st->step, lrs, p->step.err.msg);
}
