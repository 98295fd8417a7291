/* metrics.c — the logged values' means over training batches and the test split. */
#include "aigc/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/dist.h"
#include "aigc/pool.h"

void mt_json_num(FILE *f, double v)
{
    /* JSON has no NaN or Infinity: null keeps the line parseable. */
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

void mt_logged(const pg_program *p, const ag_graph *g, float *v)
{
    for (int k = 0; k < p->nlogs; k++) v[k] = g->nodes[p->logs[k]->id]->data[0];
}

void mt_add(mt_means *m, const pg_program *p, const float *v, int n, int training)
{
    for (int k = 0; k < p->nlogs && k < MT_MAX_LOGS; k++) {
        if (training && !pg_log_made(p, k)) continue;
        m->sum[k] += (double)v[k] * n;
        m->counts[k] += n;
    }
    m->count += n;
}

double mt_mean(const mt_means *m, int k) { return m->sum[k] / (double)(m->counts[k] ? m->counts[k] : 1); }

ag_node *mt_logits(const pg_program *p)
{
    for (int k = 0; k < p->nnamed; k++) {
        const ag_node *n = p->named_nodes[k];
        if (!strcmp(p->named[k], "logits"))
            return n->batched && n->shape.ndim == 2 && n->shape.d[1] == p->classes ? p->named_nodes[k] : NULL;
    }
    return NULL;
}

/* How many rows of logits [n, classes] have their largest value at the label (the
 * first of equal ones, like torch.argmax). */
static int64_t count_correct(const ag_node *logits, const float *labels, int n)
{
    int64_t c = logits->shape.d[1], right = 0;
    for (int k = 0; k < n; k++) {
        const float *row = logits->data + k * c;
        int64_t best = 0;
        for (int64_t j = 1; j < c; j++)
            if (row[j] > row[best]) best = j;
        right += best == (int64_t)labels[k];
    }
    return right;
}

/* The test split's batches, claimed one by one by `graphs` graphs running side by side
 * (pg_eval_graphs), each on a thread where the pool is that thread alone: a batch of 64
 * keeps more of the BLAS's rate whole on one core than cut in two over both, and the
 * two threads meet once per evaluation instead of once per op. A batch's results do
 * not depend on the graph or thread that runs it: each draws its noise from a
 * generator of its own (the same at every evaluation: test losses compare across
 * epochs, and evaluating never shifts the training's draws), and its values are kept
 * to be added up in batch order afterwards. */
typedef struct eval_job {
    const pg_program *p;
    const idx_dataset *ds;
    ag_graph *graphs[TP_MAX_THREADS];
    const ag_node *logits;
    int64_t nbatches;
    uint64_t seed;
    _Atomic int64_t next;      /* the next batch to claim */
    _Atomic int stop;          /* a batch failed: claim no more */
    int rank, ranks;           /* batch b is run by rank b % ranks (dist.h) */
    float *values;             /* [nbatches][nlogs] */
    float *right;              /* [nbatches]: images classified right */
    int64_t failed[TP_MAX_THREADS]; /* per graph, the batch that failed, or nbatches */
    ag_error err[TP_MAX_THREADS];
} eval_job;

/* The size of batch b of a split of `count` items: the last may be short. */
static int batch_size_at(int64_t count, int batch, int64_t b)
{
    return (int)(count - b * batch < batch ? count - b * batch : batch);
}

static void eval_graphs(void *ctx, int64_t lo, int64_t hi)
{
    eval_job *j = ctx;
    const pg_program *p = j->p;
    int batch = p->spec->data.batch;
    for (int64_t k = lo; k < hi; k++) {
        ag_graph *g = j->graphs[k];
        ag_node *pixels = g->nodes[p->pixels->id], *labels = g->nodes[p->labels->id];
        rng r;
        g->rng = &r;
        while (!atomic_load(&j->stop)) {
            int64_t b = atomic_fetch_add(&j->next, 1) * j->ranks + j->rank;
            if (b >= j->nbatches) break;
            int n = batch_size_at(j->ds->count, batch, b);
            ds_fill_batch(pixels, labels, j->ds, NULL, b * batch, n);
            rng_seed_stream(&r, j->seed, (uint64_t)b);
            ag_graph_set_batch(g, n);
            if (ag_forward(g, 0, g->n)) {
                j->failed[k] = b;
                j->err[k] = g->err;
                atomic_store(&j->stop, 1);
                break;
            }
            mt_logged(p, g, j->values + b * p->nlogs);
            if (j->logits) j->right[b] = (float)count_correct(g->nodes[j->logits->id], labels->data, n);
        }
    }
}

int mt_evaluate(pg_program *p, const idx_dataset *ds, mt_means *m, int64_t *correct, ag_error *err)
{
    int batch = p->spec->data.batch;
    /* data.drop_last: full batches only, as in training (a cut of the batch needs them). */
    int64_t nbatches = p->spec->data.drop_last ? ds->count / batch : (ds->count + batch - 1) / batch;
    eval_job j = {.p = p, .ds = ds, .logits = mt_logits(p), .nbatches = nbatches,
                  .seed = p->spec->seed ^ 0xe7a1ull, .rank = dp_rank(), .ranks = dp_size()};
    int ngraphs = pg_eval_graphs(p, tp_threads(), j.graphs);
    /* The counts after the values: one sum over the ranks brings both. Zeros where
     * another rank ran the batch, so each value arrives exact. */
    j.values = ag_xcalloc((size_t)(j.nbatches * (p->nlogs + 1) + 1), sizeof *j.values);
    j.right = j.values + j.nbatches * p->nlogs;
    for (int k = 0; k < ngraphs; k++) {
        j.failed[k] = j.nbatches;
        j.graphs[k]->training = 0;
    }
    rng *train_rng = p->step.rng;
    pg_ema_swap(p);
    tp_for_items(ngraphs, 1, eval_graphs, &j);
    pg_ema_swap(p);
    p->step.rng = train_rng;
    p->step.training = 1;

    int first = 0;
    for (int k = 1; k < ngraphs; k++)
        if (j.failed[k] < j.failed[first]) first = k;
    if (j.failed[first] == j.nbatches) dp_sum_f32(j.values, j.nbatches * (p->nlogs + 1));
    memset(m, 0, sizeof *m);
    *correct = j.logits ? 0 : -1;
    for (int64_t b = 0; b < j.nbatches && j.failed[first] == j.nbatches; b++) {
        mt_add(m, p, j.values + b * p->nlogs, batch_size_at(ds->count, batch, b), 0);
        if (j.logits) *correct += (int64_t)j.right[b];
    }
    free(j.values);
    if (j.failed[first] < j.nbatches) {
        /* The images (or windows) of the batch, as an element index in the message
         * counts within it. */
        int64_t from = j.failed[first] * batch;
        *err = j.err[first];
        return ag_error_addf(err, " (test %s %lld-%lld)", p->spec->data.kind == SP_DATA_TEXT ? "windows" : "images",
                             (long long)from, (long long)(from + batch_size_at(ds->count, batch, j.failed[first]) - 1));
    }
    return AG_OK;
}

/* One more "name value" of the evaluation, as a line or a JSON member. */
static void eval_put(FILE *out, int json, int *first, const char *name, double v, const char *fmt)
{
    if (json) {
        fprintf(out, "%s\"%s\":", *first ? "" : ",", name);
        mt_json_num(out, v);
    } else {
        fprintf(out, "%s ", name);
        fprintf(out, fmt, v);
        fputc('\n', out);
    }
    *first = 0;
}

int mt_report(pg_program *p, const ds_data *d, FILE *out, int json, ag_error *err)
{
    if (!d->has_test)
        return ag_errorf(err, p->spec->data.path_loc, d->kind == SP_DATA_TEXT
                         ? "the data has no test split (data.test is 0)" : "the data has no test split (t10k files)");
    mt_means m;
    int64_t correct;
    if (mt_evaluate(p, &d->test, &m, &correct, err)) return AG_ERR;
    if (m.count == 0)
        return ag_errorf(err, p->spec->data.batch_loc,
                         "the test split has %lld items, fewer than a batch of %d, and data.drop_last leaves none",
                         (long long)d->test.count, p->spec->data.batch);
    int first = 1;
    if (json) fputc('{', out);
    for (int k = 0; k < p->nlogs; k++) {
        char name[160];
        snprintf(name, sizeof name, "test_%s", p->log_names[k]);
        eval_put(out, json, &first, name, mt_mean(&m, k), "%.6g");
    }
    if (correct >= 0) eval_put(out, json, &first, "test_accuracy", (double)correct / (double)m.count, "%.4f");
    /* train.nll, in the unit each kind of data is measured in: nats per image, or bits
     * per character beside what the characters' frequencies alone would give. */
    int64_t chars = d->test.count * (d->test.cols - 1);
    if (p->nll_log >= 0 && d->kind == SP_DATA_TEXT) {
        eval_put(out, json, &first, "test_bits_per_char", m.sum[p->nll_log] / (double)m.count / M_LN2, "%.4f");
        /* The targets of window k are test tokens 1 + k (cols - 1) onwards. */
        eval_put(out, json, &first, "unigram_bits_per_char", tx_unigram_bits(&d->text, 1, chars), "%.4f");
    } else if (p->nll_log >= 0) {
        eval_put(out, json, &first, "test_nats_per_image", m.sum[p->nll_log] / (double)m.count, "%.4f");
    }
    if (d->kind == SP_DATA_TEXT) {
        eval_put(out, json, &first, "windows", (double)m.count, "%.0f");
        eval_put(out, json, &first, "characters", (double)chars, "%.0f");
    } else if (json) {
        eval_put(out, json, &first, "images", (double)m.count, "%.0f");
    }
    if (json) fputs("}\n", out);
    return AG_OK;
}
