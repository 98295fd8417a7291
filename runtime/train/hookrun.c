/* hookrun.c — the Lua hooks called from the training loop, and what they ask for. */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>

#include "aigc/dist.h"
#include "aigc/sample.h"

static void hook_print(void *ctx, const char *line)
{
    const tr_run_state *st = ctx;
    /* Every rank runs the hook; rank 0 speaks for them. */
    if (dp_rank() != 0) return;
    if (st->pr.live) fputs("\r\033[K", stderr);
    fprintf(stderr, "%s\n", line);
}

int tr_hooks_open(tr_run_state *st, ag_error *err)
{
    const pg_program *p = st->p;
    const sp_spec *s = p->spec;
    if (!s->hooks) return AG_OK;
    lh_options lo = {.unsafe = st->o->unsafe_hooks, .warn = st->o->warn_hooks, .print = hook_print,
                     .print_ctx = st};
    ag_error e;
    if (lh_open(&st->hk.L, s->hooks, &lo, &e)) return ag_errorf(err, s->hooks_loc, "%s", e.msg);
    st->hk.optims = ag_xcalloc((size_t)s->noptims, sizeof *st->hk.optims);
    for (int k = 0; k < s->noptims; k++)
        st->hk.optims[k] = (lh_optim){s->optims[k].name, p->optims[k].groups[0].lr, 0};
    st->hk.tensors = ag_xcalloc((size_t)(p->nnamed ? p->nnamed : 1), sizeof *st->hk.tensors);
    st->hk.values = ag_xcalloc((size_t)(p->nlogs ? p->nlogs : 1), sizeof *st->hk.values);
    st->hk.test = ag_xcalloc((size_t)(p->nlogs ? p->nlogs : 1), sizeof *st->hk.test);
    st->hk.decided = ag_xcalloc((size_t)(2 + 2 * s->noptims), sizeof *st->hk.decided);
    int64_t batch = s->data.batch, count = st->d->train.count;
    st->hk.run = (lh_run){.name = s->name, .dir = st->dir, .epochs = s->epochs,
                          .steps_per_epoch = s->data.drop_last ? count / batch : (count + batch - 1) / batch,
                          .noptims = s->noptims,
                          .optims = st->hk.optims, .tensors = st->hk.tensors};
    return AG_OK;
}

void tr_hooks_close(tr_run_state *st)
{
    if (st->hk.L) lh_close(st->hk.L);
    free(st->hk.optims);
    free(st->hk.tensors);
    free(st->hk.values);
    free(st->hk.test);
    free(st->hk.decided);
}

/* What rank 0's hook asked for (stop, save, learning rates), on every rank: each rank
 * ran the hook on the same values, but a script may still tell ranks apart (by time,
 * say), and ranks that acted differently would no longer meet. */
static void rank0_decides(tr_hooks *hk)
{
    if (dp_size() == 1) return;
    lh_run *r = &hk->run;
    double *d = hk->decided;
    d[0] = r->stop;
    d[1] = r->save_checkpoint;
    for (int k = 0; k < r->noptims; k++) {
        d[2 + 2 * k] = r->optims[k].changed;
        d[3 + 2 * k] = r->optims[k].lr;
    }
    dp_bcast_f64(d, 2 + 2 * r->noptims);
    r->stop = d[0] != 0;
    r->save_checkpoint = d[1] != 0;
    for (int k = 0; k < r->noptims; k++) {
        r->optims[k].changed = d[2 + 2 * k] != 0;
        r->optims[k].lr = d[3 + 2 * k];
    }
}

int tr_hook(tr_run_state *st, lh_event ev, const mt_means *train, const mt_means *test, ag_error *err)
{
    pg_program *p = st->p;
    lh_run *r = &st->hk.run;
    r->epoch = st->epoch;
    r->step = st->step;
    r->samples = st->step ? st->step * p->spec->data.batch : 0;
    r->seconds = pb_now() - st->pr.start;
    for (int k = 0; k < p->nlogs; k++)
        st->hk.values[k] = train ? mt_mean(train, k) : st->logged[k];
    r->loss = (lh_scalars){p->nlogs, p->log_names, st->hk.values};
    r->test = (lh_scalars){0, p->log_names, st->hk.test};
    if (test && test->count) {
        for (int k = 0; k < p->nlogs; k++) st->hk.test[k] = test->sum[k] / (double)test->count;
        r->test.n = p->nlogs;
    }
    r->ntensors = ev == LH_ON_STEP ? p->nnamed : 0;
    for (int k = 0; k < r->ntensors; k++)
        st->hk.tensors[k] = (lh_tensor){p->named[k], p->named_nodes[k]->data, p->named_nodes[k]->shape};

    int rc = lh_call(st->hk.L, ev, r, err);
    st->hk.failed = rc == AG_ERR;
    if (rc == LH_WARNED) {
        hook_print(st, err->msg);
        rc = AG_OK;
    }
    if (rc) return AG_ERR;
    rank0_decides(&st->hk);
    for (int k = 0; k < r->noptims; k++)
        if (r->optims[k].changed) opt_set_lr(&p->optims[k], -1, r->optims[k].lr);
    for (int k = 0; k < r->nsample_requests; k++) {
        char path[4400];
        const lh_sample_request *q = &r->sample_requests[k];
        if (q->path[0] == '/' || !q->path[0])
            snprintf(path, sizeof path, "%s", q->path[0] ? q->path : "");
        else
            snprintf(path, sizeof path, "%s/%s", st->dir, q->path);
        /* A request that fails is the hook's failure, not the training's: the run is
         * saved as for a hook that raised an error. */
        st->hk.failed = 1;
        if (p->nsamples == 0)
            return ag_errorf(err, p->spec->hooks_loc, "aigc.sample: the spec has no sample: section");
        /* The program's sections are the spec's, in its order. */
        const sp_sample *found = q->section[0] ? sp_find_sample(p->spec, q->section) : p->spec->samples;
        if (!found) {
            char hint[256];
            return ag_errorf(err, p->spec->hooks_loc, "aigc.sample: the spec has no sample section '%s'%s",
                             q->section, sp_sample_hint(p->spec, q->section, hint, sizeof hint));
        }
        int sec = (int)(found - p->spec->samples);
        if (p->samples[sec].features)
            return ag_errorf(err, p->spec->hooks_loc, "aigc.sample: sample section '%s' gives features, not images "
                             "(aigc-run encode writes them)", found->name);
        if (!q->path[0])
            snprintf(path, sizeof path, "%s/samples-step-%08lld-%d.%s", st->dir, (long long)st->step, k,
                     p->samples[sec].text ? "txt" : "png");
        ag_error e;
        if (dp_rank() == 0 && sa_write(p, sec, st->d, path, p->spec->seed, q->n, &e))
            return ag_errorf(err, (ag_loc){0}, "hook '%s' failed: aigc.sample: %s", lh_event_name(ev), e.msg);
        st->hk.failed = 0;
    }
    if (r->save_checkpoint && tr_checkpoint(st, err)) return AG_ERR;
    if (r->stop && !st->stop) {
        st->stop = 1;
        hook_print(st, r->stop_reason[0] ? r->stop_reason : "stopped by the hook script");
    }
    lh_clear(r);
    return AG_OK;
}

void tr_hook_logs(tr_run_state *st)
{
    for (int k = 0; k < st->hk.run.nlogs; k++) {
        fprintf(st->mf, ",\"%s\":", st->hk.run.logs[k].name);
        mt_json_num(st->mf, st->hk.run.logs[k].value);
    }
    st->hk.run.nlogs = 0;
}
