/*
 * metrics.h — the values a spec logs, averaged over batches (prefix mt_): over the
 * training batches of an epoch, and over the whole test split, which `aigc-run eval`
 * reports and each epoch's row in metrics.jsonl carries.
 *
 *     mt_means m;
 *     int64_t correct;
 *     if (mt_evaluate(p, &data.test, &m, &correct, &err)) ...
 *     double test_loss = m.sum[0] / m.count;
 */
#ifndef AIGC_METRICS_H
#define AIGC_METRICS_H

#include <stdio.h>

#include "aigc/dataset.h"
#include "aigc/program.h"

enum { MT_MAX_LOGS = SP_MAX_LOGS };

/* Running sums of the logged values, each weighted by its batch's size: count items
 * in all, counts[k] of them where value k was computed (a value that only an update
 * made every K steps needs is computed on those steps alone). */
typedef struct mt_means {
    double sum[MT_MAX_LOGS];
    int64_t count;
    int64_t counts[MT_MAX_LOGS];
} mt_means;

/* The logged values as graph g (the step's, or a copy of it) last made them, into v
 * (p->nlogs floats). */
void mt_logged(const pg_program *p, const ag_graph *g, float *v);
/* A batch of n's logged values v into the running means. training: they are those of
 * the training step after p->steps_done, which left out the values pg_log_made says it
 * did not compute; else (evaluation) every value was computed. */
void mt_add(mt_means *m, const pg_program *p, const float *v, int n, int training);
/* Value k's mean: 0 before any batch computed it. */
double mt_mean(const mt_means *m, int k);

/* A classifier's logits: the step's tensor named `logits` when it is [B, classes],
 * else NULL. With one, evaluation also counts the test images it classifies right
 * (argmax == label). */
ag_node *mt_logits(const pg_program *p);

/* The test means of the logged values over ds, and with a `logits` tensor, how many
 * images it classifies right (*correct; -1 without one). A model with `ema:` is
 * evaluated with its averaged weights, the ones its samples are drawn with. The
 * batches run a graph per thread where the program has copies of its step
 * (pg_eval_graphs), and the result is the same bits at any thread count. A failing
 * batch's message is the first one's, as if they had run in order. */
int mt_evaluate(pg_program *p, const idx_dataset *ds, mt_means *m, int64_t *correct, ag_error *err);

/* `aigc-run eval`: the test means, as lines "test_NAME VALUE" or as one JSON object; for
 * a classifier also test_accuracy, for train.nll its unit (nats per image, bits per
 * character beside the unigram baseline). */
int mt_report(pg_program *p, const ds_data *d, FILE *out, int json, ag_error *err);

/* A number as JSON has it: NaN and infinities, which JSON lacks, as null. */
void mt_json_num(FILE *f, double v);

#endif
