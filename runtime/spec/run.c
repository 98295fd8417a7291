/* run.c — a compiled program run: training steps, evaluation graphs, the averaged
 * weights, and sample sections with their loops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/dist.h"
#include "compile.h"

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

/* The gradients an update applies, summed over the ranks (dist.h): each rank's are the
 * partial sums of its rows. A rank that runs no rows adds nothing. A group's parameters
 * that lie side by side in the store go in one sum, each call being a round trip. */
static void sum_grads(pg_program *p, const opt_optimizer *o, int empty)
{
    for (int k = 0; k < o->ngroups; k++) {
        const opt_group *gr = &o->groups[k];
        for (int r = 0; r < gr->nranges;) {
            int64_t from = gr->ranges[r].offset, to = from + gr->ranges[r].n;
            for (r++; r < gr->nranges && gr->ranges[r].offset == to; r++) to += gr->ranges[r].n;
            float *grad = p->params.grad + from;
            if (empty) memset(grad, 0, (size_t)(to - from) * sizeof *grad);
            dp_sum_f32(grad, to - from);
        }
    }
}

/* batch_norm's running statistics, averaged over the ranks: each rank moved them
 * towards its own rows' statistics, and the average of those moves is the move towards
 * the average of the rows' means (the variances lack the spread between the ranks'
 * means: docs/scaling.md). Every rank then evaluates and saves the same ones. */
static void average_running_stats(pg_program *p)
{
    const ag_graph *g = &p->step;
    float scale = 1.0f / (float)dp_size();
    for (int k = 0; k < g->n; k++) {
        const ag_node *n = g->nodes[k];
        if (n->op != AG_OP_BATCH_NORM) continue;
        for (int j = 3; j < 5; j++) {
            float *x = n->src[j]->data;
            int64_t len = ag_numel(&n->src[j]->shape);
            dp_sum_f32(x, len);
            for (int64_t i = 0; i < len; i++) x[i] *= scale;
        }
    }
}

int pg_train_step(pg_program *p, int batch) { return pg_train_shard(p, 0, batch, batch); }

int pg_log_made(const pg_program *p, int k) { return p->steps_done % p->log_every[k] == 0; }

/* Nodes [from, to) that this step needs, in runs of consecutive ones. */
static int forward_needed(pg_program *p, int from, int to)
{
    ag_graph *g = &p->step;
    while (from < to) {
        while (from < to && p->steps_done % p->node_every[from]) from++;
        int end = from;
        while (end < to && p->steps_done % p->node_every[end] == 0) end++;
        if (from < end && ag_forward(g, from, end)) return AG_ERR;
        from = end;
    }
    return AG_OK;
}

/* The step's segments, forward, backward, sum over the ranks and update, until one
 * fails or is skipped. */
static int run_segments(pg_program *p, int empty, int ranks)
{
    ag_graph *g = &p->step;
    for (int k = 0; k < p->nsegs; k++) {
        const pg_segment *sg = &p->segs[k];
        if (forward_needed(p, sg->from, sg->to)) return AG_ERR;
        if (sg->optim < 0 || p->steps_done % sg->every) continue;
        ag_backward(g, sg->bw);
        opt_optimizer *o = &p->optims[sg->optim];
        if (ranks) sum_grads(p, o, empty);
        p->bad_seg = k;
        /* No update from a non-finite loss or gradient: it is left out, and so are the
         * statements after it, which would see it made. Every rank sees the same sums,
         * so every rank decides alike. */
        float loss = empty ? 0 : sg->loss->data[0];
        if (ranks && p->spec->on_nan_skip) dp_sum_f32(&loss, 1);
        if (p->spec->on_nan_skip && (!isfinite(loss) || !opt_grads_finite(o))) return PG_SKIPPED;
        opt_step(o);
        if (p->spec->on_nan_skip && !opt_params_finite(o)) return PG_OVERFLOWED;
        update_ema(p, sg->optim);
    }
    return AG_OK;
}

int pg_train_shard(pg_program *p, int lo, int n, int global)
{
    /* No rows: one row run for its draws alone, so the generator keeps in step. */
    ag_graph_set_shard(&p->step, n ? lo : 0, n ? n : 1, global);
    int ranks = dp_size() > 1;
    int rc = run_segments(p, n == 0, ranks);
    /* A rank that failed is ending the job: the others are not waited for. */
    if (ranks && rc != AG_ERR) average_running_stats(p);
    return rc;
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
    if (want - 1 > p->copies.n && !p->copies.refused) {
        p->copies.graphs = ag_xrealloc(p->copies.graphs, (size_t)(want - 1) * sizeof *p->copies.graphs);
        int64_t planned = pg_planned_bytes_impl(p), limit = p->spec->max_memory, used = 0;
        for (int k = 0; k < p->copies.n; k++) used += p->copies.graphs[k].slab_floats * (int64_t)sizeof(float);
        while (p->copies.n < want - 1) {
            /* A copy pays where small sgemms gain most from running whole: an MLP's
             * (the VAE's copy plans 1.0 MB at batch 64, the MADE's 3.9 MB), not a
             * convolutional network's (the DCGAN's 15 MB, the DDPM's 32 MB), whose ops
             * the pool cuts by image anyway. So each copy fits in 8 MB, and all take at
             * most a quarter of what the run planned without them. */
            int64_t left = planned / 4 - used;
            if (left > (8 << 20)) left = 8 << 20;
            if (limit && limit - planned - used < left) left = limit - planned - used;
            ag_error ignored;
            if (left <= 0 || ag_graph_copy(&p->copies.graphs[p->copies.n], &p->step, NULL, left, &ignored)) {
                p->copies.refused = 1;
                break;
            }
            used += p->copies.graphs[p->copies.n++].slab_floats * (int64_t)sizeof(float);
        }
    }
    int n = 1 + (want - 1 < p->copies.n ? want - 1 : p->copies.n);
    out[0] = &p->step;
    for (int k = 1; k < n; k++) out[k] = &p->copies.graphs[k - 1];
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

int pg_sample_reads_data(const pg_program *p, int k)
{
    const pg_sampler *q = &p->samples[k];
    const ag_graph *g = &q->graph;
    char *seen = ag_xcalloc((size_t)g->n, 1);
    ag_node **todo = ag_xmalloc((size_t)g->n * sizeof *todo);
    int n = 0, reads = 0;
    todo[n++] = q->image;
    seen[q->image->id] = 1;
    /* The labels a data set records are drawn as the images are. */
    if (q->label && !seen[q->label->id]) {
        todo[n++] = q->label;
        seen[q->label->id] = 1;
    }
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
