/* train.c — the training loop: epochs of steps over the data, a row of metrics per
 * epoch, a checkpoint after each. */
#include "run.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "aigc/blas.h"
#include "aigc/ckpt.h"
#include "aigc/dist.h"
#include "aigc/pool.h"
#include "aigc/report.h"
#include "aigc/sample.h"
#include "rundir.h"

/* After each epoch every section: the first as samples-epoch-NNN.png, the others
 * under their names; a text section as .txt. */
static int epoch_samples(tr_run_state *st, ag_error *err)
{
    pg_program *p = st->p;
    if (dp_rank() != 0) return AG_OK;
    for (int k = 0; k < p->nsamples; k++) {
        if (!p->samples[k].spec->each_epoch) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s-epoch-%03d.%s", st->dir, k ? p->samples[k].spec->name : "samples",
                 st->epoch, p->samples[k].text ? "txt" : "png");
        if (sa_write(p, k, st->d, path, p->spec->seed, 0, err)) return AG_ERR;
    }
    return AG_OK;
}

/* SIGINT or SIGTERM: the step in progress finishes, a checkpoint is saved, the run
 * stops. A second signal ends the process at once. */
static volatile sig_atomic_t tr_signal;

static void on_signal(int sig)
{
    if (tr_signal) _exit(128 + sig);
    tr_signal = sig;
}

/* The handler runs on a stack of its own: oneDNN's JIT kernels keep data below the stack
 * pointer (valgrind sees them read there), which a handler's frame on the interrupted
 * stack would overwrite. Interrupted that way, a run whose first oneDNN product came
 * before its data loaded aborted on heap corruption in 1 of 10 tries (tests/cli/faults.t's
 * SIGINT, data not cached); on this stack, in none of 60. The pool's workers take no such
 * signal (runtime/core/pool.c), so it lands on this thread or one idle in a library. */
static char tr_signal_stack[1 << 16];

/* Whether the run was interrupted. With several ranks, a signal counts once every rank
 * knows of it, from the sum after the step in which it came (step_logs): they stop
 * after the same step, none waiting for another that stopped. */
static int interrupted(const tr_run_state *st) { return dp_size() == 1 ? tr_signal : st->interrupt; }

/* The step's logged values, as the whole batch made them: a value made from the batch
 * is the sum of the ranks' parts (a mean over the batch is each rank's sum over the
 * whole batch's count); one made from the weights alone is rank 0's, the same on
 * every rank. The same sum tells every rank of a signal any rank got. */
static void step_logs(tr_run_state *st, int rows)
{
    const pg_program *p = st->p;
    mt_logged(p, &p->step, st->logged);
    if (dp_size() == 1) return;
    for (int k = 0; k < p->nlogs; k++)
        if (st->from_batch[k] ? rows == 0 : dp_rank() != 0) st->logged[k] = 0;
    st->logged[p->nlogs] = (float)tr_signal;
    dp_sum_f32(st->logged, p->nlogs + 1);
    if (st->logged[p->nlogs] != 0) st->interrupt = tr_signal ? tr_signal : SIGTERM;
}

/* Per logged value: whether the batch's data or draws reach it (a batched node does). */
static char *from_batch(const pg_program *p)
{
    const ag_graph *g = &p->step;
    char *dep = ag_xcalloc((size_t)g->n, 1), *out = ag_xcalloc((size_t)(p->nlogs ? p->nlogs : 1), 1);
    for (int k = 0; k < g->n; k++) {
        const ag_node *n = g->nodes[k];
        dep[k] = (char)n->batched;
        for (int j = 0; j < n->nsrc; j++) dep[k] |= dep[n->src[j]->id];
    }
    for (int k = 0; k < p->nlogs; k++) out[k] = dep[p->logs[k]->id];
    free(dep);
    return out;
}

/* A skipped batch's values are left out (null): they are not the step's; so are those
 * the step did not compute (an update made every K steps). */
static void step_row(tr_run_state *st, int skipped)
{
    const pg_program *p = st->p;
    fprintf(st->mf, "{\"kind\":\"step\",\"epoch\":%d,\"step\":%lld,\"seconds\":%.3f", st->epoch,
            (long long)st->step, pb_now() - st->pr.start);
    for (int k = 0; k < p->nlogs; k++) {
        fprintf(st->mf, ",\"%s\":", p->log_names[k]);
        mt_json_num(st->mf, skipped || !pg_log_made(p, k) ? NAN : st->logged[k]);
    }
    if (p->spec->on_nan_skip) fprintf(st->mf, ",\"skipped\":%lld", (long long)st->rec.skipped);
    tr_hook_logs(st);
    fputs("}\n", st->mf);
}

static int train_epoch(tr_run_state *st, ag_error *err)
{
    pg_program *p = st->p;
    const sp_spec *s = p->spec;
    const idx_dataset *tr = &st->d->train;
    int batch = s->data.batch;
    double epoch_start = pb_now();
    int64_t first = st->cursor;
    while (st->cursor < tr->count && !st->stop && !interrupted(st)) {
        int n = (int)(tr->count - st->cursor < batch ? tr->count - st->cursor : batch), lo, rows;
        /* data.drop_last: the short last batch is not trained on; the epoch is over. */
        if (n < batch && s->data.drop_last) {
            first += n;
            st->cursor = tr->count;
            break;
        }
        /* This rank's rows of the batch (all of them on one rank); a rank left without
         * any still runs one, for the draws. */
        dp_share(n, &lo, &rows);
        ds_fill_batch(p->pixels, p->labels, tr, st->order, st->cursor + (rows ? lo : 0), rows ? rows : 1);
        p->steps_done = st->step;
        int rc = pg_train_shard(p, lo, rows, n);
        if (rc == AG_ERR) return tr_step_failed(st, err);
        st->step++;
        st->cursor += n;
        step_logs(st, rows);
        if (rc == PG_OVERFLOWED) return tr_overflowed(st, err);
        if (rc == PG_SKIPPED) {
            if (tr_skip_batch(st, err)) return AG_ERR;
        } else {
            int bad;
            if (tr_nonfinite_log(p, st->logged, &bad)) return tr_diverged(st, bad, err);
            st->rec.skipped_in_row = 0;
            mt_add(&st->rec.train, p, st->logged, n, 1);
            st->pr.shown = p->nlogs < PB_SHOWN ? p->nlogs : PB_SHOWN;
            /* A value this step did not compute shows its last one. */
            for (int k = 0; k < st->pr.shown; k++)
                if (pg_log_made(p, k)) st->pr.values[k] = st->logged[k];
        }
        /* A failing hook still gets its step's row: the run is saved after it. */
        int hrc = rc == AG_OK && st->hk.L && lh_has(st->hk.L, LH_ON_STEP) ? tr_hook(st, LH_ON_STEP, NULL, NULL, err)
                                                                           : AG_OK;
        if (st->step % s->log_every == 0) step_row(st, rc == PG_SKIPPED);
        if (hrc) return AG_ERR;
        if (s->ckpt_every && st->step % s->ckpt_every == 0 && tr_checkpoint(st, err)) return AG_ERR;
        pb_update(&st->pr, p, st->epoch, st->cursor, tr->count, first, st->rec.skipped, epoch_start, 0);
    }
    pb_update(&st->pr, p, st->epoch, st->cursor, tr->count, first, st->rec.skipped, epoch_start, 1);
    if (st->pr.live) fputc('\n', stderr);
    st->train_seconds += pb_now() - epoch_start;
    st->trained += st->cursor - first;
    return AG_OK;
}

/* The epoch's row: in metrics.jsonl, and as a line on stdout. */
static void epoch_row(tr_run_state *st, const mt_means *test, int64_t correct)
{
    const pg_program *p = st->p;
    const sp_spec *s = p->spec;
    const mt_means *train = &st->rec.train;
    FILE *mf = st->mf;
    fprintf(mf, "{\"kind\":\"epoch\",\"epoch\":%d,\"step\":%lld,\"seconds\":%.3f", st->epoch,
            (long long)st->step, pb_now() - st->pr.start);
    printf("epoch %d/%d", st->epoch, s->epochs);
    for (int k = 0; k < p->nlogs; k++) {
        double v = mt_mean(train, k);
        fprintf(mf, ",\"train_%s\":", p->log_names[k]);
        mt_json_num(mf, v);
        printf("  %s %.4f", p->log_names[k], v);
    }
    for (int k = 0; k < p->nlogs && test->count; k++) {
        double v = test->sum[k] / (double)test->count;
        fprintf(mf, ",\"test_%s\":", p->log_names[k]);
        mt_json_num(mf, v);
        printf("  test_%s %.4f", p->log_names[k], v);
    }
    if (correct >= 0 && test->count) {
        double acc = (double)correct / (double)test->count;
        fprintf(mf, ",\"test_accuracy\":%.9g", acc);
        printf("  test_accuracy %.4f", acc);
    }
    /* Text is compared in bits per character: train.nll's test mean in that unit. */
    if (p->nll_log >= 0 && st->d->kind == SP_DATA_TEXT && test->count) {
        double bpc = test->sum[p->nll_log] / (double)test->count / M_LN2;
        fprintf(mf, ",\"test_bits_per_char\":");
        mt_json_num(mf, bpc);
        printf("  test_bits_per_char %.4f", bpc);
    }
    if (s->on_nan_skip) {
        fprintf(mf, ",\"skipped\":%lld", (long long)st->rec.skipped);
        if (st->rec.skipped) printf("  skipped %lld", (long long)st->rec.skipped);
    }
    tr_hook_logs(st);
    fputs("}\n", mf);
    fflush(mf);
    printf("\n");
    fflush(stdout);
}

/* The run's facts and its report page: a view of the run, so that one that cannot be
 * written is reported and the run goes on. */
static void write_report(tr_run_state *st)
{
    if (dp_rank() != 0) return;
    const sp_spec *s = st->p->spec;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    rp_facts f = {.spec_name = s->name, .spec_path = s->path, .command = st->o->command ? st->o->command : "",
                  .backend = bk_name(bk_current()), .threads = tp_threads(), .epoch = st->epoch, .epochs = s->epochs,
                  .step = st->step, .seconds = pb_now() - st->pr.start,
                  .samples_per_second = st->train_seconds > 0 ? (double)st->trained / st->train_seconds : 0,
                  .peak_memory_mb = (double)ru.ru_maxrss / 1024, .checkpoint = "last.safetensors"};
    char out[4200];
    snprintf(out, sizeof out, "%s/report.html", st->dir);
    const char *dirs[] = {st->dir};
    ag_error e;
    if (rp_write_facts(st->dir, &f, s->doc.src, s->doc.src_len, &e) == AG_OK && rp_write(dirs, 1, out, &e) == AG_OK)
        return;
    if (st->pr.live) fputs("\r\033[K", stderr);
    fprintf(stderr, "%s (the report is left as it was; training goes on)\n", e.msg);
}

static int end_epoch(tr_run_state *st, ag_error *err)
{
    mt_means test = {0}, *train = &st->rec.train;
    int64_t correct = -1;
    if (st->d->has_test && mt_evaluate(st->p, &st->d->test, &test, &correct, err)) return AG_ERR;
    if (st->hk.L && st->d->has_test && tr_hook(st, LH_ON_EVAL, train, &test, err)) return AG_ERR;
    if (st->hk.L && tr_hook(st, LH_ON_EPOCH_END, train, &test, err)) return AG_ERR;
    epoch_row(st, &test, correct);
    if (epoch_samples(st, err)) return AG_ERR;
    memset(train, 0, sizeof *train);
    st->rec.skipped = 0;
    if (tr_checkpoint(st, err)) return AG_ERR;
    write_report(st);
    return AG_OK;
}

static int run_epochs(tr_run_state *st, ag_error *err)
{
    const sp_spec *s = st->p->spec;
    const idx_dataset *tr = &st->d->train;
    if (st->hk.L && tr_hook(st, LH_ON_START, NULL, NULL, err)) return AG_ERR;
    for (;;) {
        /* A checkpoint taken after an epoch's last step but before its end was recorded
         * (a hook failed in on_eval or on_epoch_end, or asked for a save there): on
         * resume, that epoch ends first, its running means still in the record. */
        if (st->cursor == tr->count && st->rec.train.count && end_epoch(st, err)) return AG_ERR;
        if (st->cursor == tr->count) {
            /* The epoch in the record is over: the next one starts in a new order. */
            if (st->epoch >= s->epochs || st->stop || interrupted(st)) break;
            st->epoch++;
            st->cursor = 0;
            if (s->data.shuffle) rng_shuffle(&st->data_rng, st->order, tr->count);
        }
        if (train_epoch(st, err)) return AG_ERR;
        if (interrupted(st)) break;
        if (st->cursor < tr->count) break; /* stopped by a hook mid-epoch */
        if (end_epoch(st, err)) return AG_ERR;
    }
    if (interrupted(st)) {
        if (tr_checkpoint(st, err)) return AG_ERR;
        dp_set_shared_error();
        return ag_errorf(err, (ag_loc){0},
                         "interrupted by %s at epoch %d, step %lld: saved %s/last; continue with --resume",
                         interrupted(st) == SIGINT ? "SIGINT" : "SIGTERM", st->epoch, (long long)st->step, st->dir);
    }
    if (st->stop && st->cursor < tr->count && tr_checkpoint(st, err)) return AG_ERR;
    return st->hk.L ? tr_hook(st, LH_ON_END, NULL, NULL, err) : AG_OK;
}

/* metrics.jsonl: appended to on resume, else made anew. */
static int open_metrics(tr_run_state *st, ag_error *err)
{
    /* Rank 0 writes the run; the others write their rows nowhere. */
    if (dp_rank() != 0) {
        st->mf = fopen("/dev/null", "w");
        return st->mf ? AG_OK : ag_errorf(err, (ag_loc){0}, "/dev/null: %s", strerror(errno));
    }
    char prev[4200];
    snprintf(prev, sizeof prev, "%s/last.state", st->dir);
    int replacing = !st->o->resume && access(prev, F_OK) == 0;
    st->mf = fopen(st->metrics_path, st->o->resume ? "a" : "w");
    if (!st->mf)
        return ag_errorf(err, (ag_loc){0}, "%s: cannot write the metrics: %s", st->metrics_path, strerror(errno));
    /* An earlier run's metrics are gone now, and its weights at the first checkpoint: a
     * run typed again without --resume is easily a mistake. */
    if (replacing) fprintf(stderr, "%s: replacing the run there (--resume would continue it)\n", st->dir);
    return AG_OK;
}

/* The run proper: its directory and metrics file, then the epochs, with SIGINT and
 * SIGTERM saving a checkpoint before they stop it. */
static int run_in_dir(tr_run_state *st, ag_error *err)
{
    const tr_options *o = st->o;
    int writer = dp_rank() == 0;
    int rc = writer ? rd_make(st->dir, err) : AG_OK;
    /* Resuming in place, the lock was taken before the checkpoint was read. */
    if (rc == AG_OK && writer && st->dir_fd < 0) rc = rd_lock(st->dir, &st->dir_fd, err);
    if (rc == AG_OK && writer) rd_clean(st->dir);
    if (rc == AG_OK && o->resume && writer)
        rc = rd_resume_metrics(st->resume_dir, st->dir, st->metrics_path, st->rec.metrics_bytes, err);
    if (rc == AG_OK) rc = open_metrics(st, err);
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_ONSTACK}, old_int, old_term;
    stack_t alt = {.ss_sp = tr_signal_stack, .ss_size = sizeof tr_signal_stack}, old_alt;
    sigemptyset(&sa.sa_mask);
    tr_signal = 0;
    sigaltstack(&alt, &old_alt);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (rc == AG_OK) {
        rc = run_epochs(st, err);
        if (rc && st->hk.failed) {
            /* A broken hook loses no training: the run so far is saved first. */
            ag_error e2;
            if (dp_rank() == 0 && tr_checkpoint(st, &e2) == AG_OK)
                ag_error_addf(err, "\n(the run so far is saved in %s/last)", st->dir);
        }
    }
    if (st->mf && fclose(st->mf) && rc == AG_OK)
        rc = ag_errorf(err, (ag_loc){0}, "%s: cannot write the metrics: %s", st->metrics_path, strerror(errno));
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaltstack(&old_alt, NULL);
    return rc;
}

int tr_run(pg_program *p, const ds_data *d, const tr_options *o, ag_error *err)
{
    const sp_spec *s = p->spec;
    tr_run_state *st = ag_xcalloc(1, sizeof *st);
    st->p = p;
    st->d = d;
    st->o = o;
    st->dir_fd = -1;
    /* Before anything is made: a path cut to fit would make a directory tree of its
     * own. The files of a run go after the directory's name. */
    if (o->out_dir && strlen(o->out_dir) > TR_MAX_DIR) {
        free(st);
        return ag_errorf(err, (ag_loc){0}, "--out %s: a path of %zu bytes; a run directory's may have at most %d",
                         o->out_dir, strlen(o->out_dir), TR_MAX_DIR);
    }
    ck_run_dir(st->dir, sizeof st->dir, o->out_dir, s->name);
    snprintf(st->metrics_path, sizeof st->metrics_path, "%s/metrics.jsonl", st->dir);
    ds_record(d, st->data_meta, sizeof st->data_meta, st->vocab_meta);
    st->pr = (pb_bar){.live = dp_rank() == 0 && (o->progress < 0 ? isatty(2) : o->progress), .off = dp_rank() != 0,
                      .start = pb_now()};

    const idx_dataset *tr = &d->train;
    if (s->data.drop_last && tr->count < s->data.batch) {
        free(st);
        return ag_errorf(err, s->data.batch_loc,
                         "the training split has %lld items, fewer than a batch of %d: data.drop_last would leave "
                         "none; lower data.batch", (long long)tr->count, s->data.batch);
    }
    st->order = ag_xmalloc((size_t)tr->count * sizeof *st->order);
    st->logged = ag_xcalloc((size_t)p->nlogs + 1, sizeof *st->logged);
    mt_logged(p, &p->step, st->logged); /* what on_start shows */
    st->from_batch = from_batch(p);
    for (int64_t k = 0; k < tr->count; k++) st->order[k] = (int32_t)k;
    /* The data order has its own generator, so that changing the model (and with it
     * the draws of noise) does not change which images come together. */
    rng_seed(&st->data_rng, s->seed ^ 0x5eedda7aull);
    st->cursor = tr->count; /* "epoch 0 is over" */

    /* The hook script loads first: one that does not compile stops the run before the
     * run directory, and an earlier run's metrics there, are touched. */
    int rc = tr_hooks_open(st, err);
    for (int k = 0; k < p->nsamples && rc == AG_OK; k++)
        if (p->samples[k].spec->each_epoch) rc = sa_inputs(p, k, d, err);
    /* Loading the checkpoint touches no file: one that is not there (--resume into a
     * directory that does not exist) leaves no run directory behind. */
    if (rc == AG_OK && o->resume) rc = tr_resume(st, *o->resume ? o->resume : st->dir, err);
    if (rc == AG_OK && !(o->resume && tr_nothing_to_train(st))) rc = run_in_dir(st, err);
    if (st->dir_fd >= 0) close(st->dir_fd);
    tr_hooks_close(st);
    free(st->order);
    free(st->logged);
    free(st->from_batch);
    free(st);
    return rc;
}
