/* check.c — `aigc-run check`: the data, the models layer by layer, the step, the memory. */
#include "check.h"

static void print_data(const sp_spec *s, const ds_data *d, FILE *out)
{
    if (d->kind == SP_DATA_FEATURES)
        fprintf(out, "data: features from %s: %d per item, %d classes; train %lld, test %lld\n\n", s->data.path,
                d->train.cols, d->train.classes, (long long)d->train.count, (long long)d->test.count);
    if (d->kind != SP_DATA_TEXT) return;
    const tx_corpus *c = &d->text;
    fprintf(out, "data: text from %s: %d file%s, %lld bytes, a vocabulary of %d bytes\n", s->data.path, c->nfiles,
            c->nfiles == 1 ? "" : "s", (long long)c->size, c->vocab);
    fprintf(out, "  train %lld bytes: %lld windows of %d; test %lld bytes: %lld windows\n\n", (long long)c->ntrain,
            (long long)d->train.count, d->train.cols, (long long)c->ntest, (long long)d->test.count);
}


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

static void print_program(const pg_program *p, FILE *out)
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
        else if (sg->every == 1)
            fprintf(out, "  forward %d nodes, then update %s: backward through %d nodes\n", sg->to - sg->from,
                    s->optims[sg->optim].name, sg->bw->nsteps);
        else
            fprintf(out, "  forward %d nodes, then update %s every %d steps: backward through %d nodes\n",
                    sg->to - sg->from, s->optims[sg->optim].name, sg->every, sg->bw->nsteps);
    }
    int sometimes = 0;
    for (int k = 0; k < p->step.n; k++) sometimes += p->node_every[k] > 1;
    if (sometimes)
        fprintf(out, "  %d of the nodes run only on the steps of the updates made every K steps\n", sometimes);
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

void cr_print_check(const pg_program *p, const ds_data *d, FILE *out)
{
    print_data(p->spec, d, out);
    print_program(p, out);
}
