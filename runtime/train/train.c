/* train.c — epochs, batches, metrics, progress, sample grids. */
#include "aigc/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aigc/png.h"

/* ------------------------------------------------------------------ data -- */

/* Whether any file of the split is there, raw or gzip. */
static int split_present(const char *dir, const char *split)
{
    static const char *const names[] = {"images-idx3-ubyte", "labels-idx1-ubyte", "images-idx3-ubyte.gz",
                                        "labels-idx1-ubyte.gz"};
    char path[4200];
    for (size_t k = 0; k < AG_COUNTOF(names); k++) {
        snprintf(path, sizeof path, "%s/%s-%s", dir, split, names[k]);
        if (access(path, F_OK) == 0) return 1;
    }
    return 0;
}

int tr_load_data(const sp_spec *s, tr_data *d, ag_error *err)
{
    memset(d, 0, sizeof *d);
    ag_error e;
    if (idx_load_split(s->data.path, "train", &d->train, &e))
        return ag_errorf(err, s->data.path_loc, "cannot load the training data: %s", e.msg);
    /* The test split is optional: without it there is no test loss. But a test file
     * that is there and broken is an error, not a quiet lack of test loss. */
    if (split_present(s->data.path, "t10k")) {
        if (idx_load_split(s->data.path, "t10k", &d->test, &e)) {
            tr_free_data(d);
            return ag_errorf(err, s->data.path_loc, "cannot load the test data: %s", e.msg);
        }
        d->has_test = 1;
        if (d->test.rows != d->train.rows || d->test.cols != d->train.cols) {
            ag_errorf(err, s->data.path_loc, "the test images are %dx%d but the training images %dx%d",
                      d->test.rows, d->test.cols, d->train.rows, d->train.cols);
            tr_free_data(d);
            return AG_ERR;
        }
    }
    return AG_OK;
}

void tr_free_data(tr_data *d)
{
    idx_dataset_free(&d->train);
    if (d->has_test) idx_dataset_free(&d->test);
    memset(d, 0, sizeof *d);
}

/* Bytes to floats per batch: the data set stays uint8, a quarter of the memory. */
static void fill_batch(pg_program *p, const idx_dataset *ds, const int32_t *order, int64_t at, int n)
{
    int64_t px = (int64_t)ds->rows * ds->cols;
    for (int k = 0; k < n; k++) {
        int64_t item = order ? order[at + k] : at + k;
        const uint8_t *src = ds->images.data + item * px;
        float *dst = p->pixels->data + k * px;
        for (int64_t j = 0; j < px; j++) dst[j] = (float)src[j];
        p->labels->data[k] = (float)ds->labels.data[item];
    }
}

/* -------------------------------------------------------------- progress -- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct tr_progress {
    int live;
    double start, last;
} tr_progress;

static void fmt_time(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void progress(tr_progress *pr, const pg_program *p, int epoch, int64_t done, int64_t total,
                     double epoch_start, int final)
{
    double t = now();
    /* A live bar redraws ten times a second; a log file gets a line every 10 s. */
    if (!final && t - pr->last < (pr->live ? 0.1 : 10.0)) return;
    pr->last = t;
    const sp_spec *s = p->spec;
    double rate = done / fmax(t - epoch_start, 1e-9);
    char eta[32], line[512];
    fmt_time(eta, sizeof eta, (total - done) / fmax(rate, 1e-9));
    int k = 0;
    if (pr->live) {
        int width = 20, fill = (int)(width * done / (total ? total : 1));
        k += snprintf(line + k, sizeof line - (size_t)k, "\r\033[Kepoch %d/%d [", epoch, s->epochs);
        for (int j = 0; j < width; j++) line[k++] = j < fill ? '#' : '.';
        k += snprintf(line + k, sizeof line - (size_t)k, "] %3d%%", (int)(100 * done / (total ? total : 1)));
    } else {
        k += snprintf(line + k, sizeof line - (size_t)k, "epoch %d/%d %lld/%lld", epoch, s->epochs,
                      (long long)done, (long long)total);
    }
    k += snprintf(line + k, sizeof line - (size_t)k, " %.0f samples/s ETA %s", rate, eta);
    for (int j = 0; j < p->nlogs && k < (int)sizeof line - 40; j++)
        k += snprintf(line + k, sizeof line - (size_t)k, " %s %.4g", p->log_names[j], p->logs[j]->data[0]);
    fputs(line, stderr);
    if (!pr->live) fputc('\n', stderr);
    fflush(stderr);
}

/* --------------------------------------------------------------- metrics -- */

static void json_num(FILE *f, double v)
{
    /* JSON has no NaN or Infinity: null keeps the line parseable. */
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

static int mkdirs(const char *path, ag_error *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ag_errorf(err, (ag_loc){0}, "%s: path too long", path);
    for (char *c = buf + 1;; c++) {
        if (*c == '/' || !*c) {
            char keep = *c;
            *c = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return ag_errorf(err, (ag_loc){0}, "%s: cannot create the run directory: %s", buf, strerror(errno));
            *c = keep;
            if (!keep) break;
        }
    }
    return AG_OK;
}

static int write_samples(pg_program *p, const char *dir, int epoch, ag_error *err)
{
    if (pg_sample(p, p->spec->seed, err)) return AG_ERR;
    float lo = p->image_lo, hi = p->image_hi;
    const float *x = p->image->data;
    int64_t n = ag_numel(&p->image->shape);
    if (!(lo < hi)) {
        lo = INFINITY, hi = -INFINITY;
        for (int64_t k = 0; k < n; k++)
            if (isfinite(x[k])) lo = fminf(lo, x[k]), hi = fmaxf(hi, x[k]);
        if (!(lo < hi)) lo = 0, hi = 1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/samples-epoch-%03d.png", dir, epoch);
    return img_write_grid(path, x, p->image_count, p->rows, p->cols, p->image_channels, p->grid_rows,
                          p->grid_cols, lo, hi, 2, err);
}

/* ------------------------------------------------------------------- run -- */

typedef struct tr_means {
    double sum[64];
    int64_t count;
} tr_means;

static void means_add(tr_means *m, const pg_program *p, int n)
{
    for (int k = 0; k < p->nlogs && k < 64; k++) m->sum[k] += (double)p->logs[k]->data[0] * n;
    m->count += n;
}

static int nonfinite(const pg_program *p, int *which)
{
    for (int k = 0; k < p->nlogs; k++)
        if (!isfinite(p->logs[k]->data[0])) {
            *which = k;
            return 1;
        }
    return 0;
}

static int evaluate(pg_program *p, const idx_dataset *ds, tr_means *m, ag_error *err)
{
    int batch = p->spec->data.batch, rc = AG_OK;
    memset(m, 0, sizeof *m);
    /* The same noise at every evaluation, from a generator of its own: test losses
     * compare across epochs, and evaluating never shifts the training's draws. */
    rng eval_rng, *train_rng = p->step.rng;
    rng_seed(&eval_rng, p->spec->seed ^ 0xe7a1ull);
    p->step.rng = &eval_rng;
    for (int64_t at = 0; at < ds->count && rc == AG_OK; at += batch) {
        int n = (int)(ds->count - at < batch ? ds->count - at : batch);
        fill_batch(p, ds, NULL, at, n);
        if (pg_eval_step(p, n)) {
            *err = p->step.err;
            rc = AG_ERR;
        }
        means_add(m, p, n);
    }
    p->step.rng = train_rng;
    return rc;
}

int tr_run(pg_program *p, const tr_data *d, const tr_options *o, ag_error *err)
{
    const sp_spec *s = p->spec;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o->out_dir ? o->out_dir : "runs");
    if (!o->out_dir) snprintf(dir, sizeof dir, "runs/%s", s->name);
    if (mkdirs(dir, err)) return AG_ERR;
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *mf = fopen(path, "w");
    if (!mf) return ag_errorf(err, (ag_loc){0}, "%s: cannot write the metrics: %s", path, strerror(errno));

    const idx_dataset *tr = &d->train;
    int32_t *order = ag_xmalloc((size_t)tr->count * sizeof *order);
    for (int64_t k = 0; k < tr->count; k++) order[k] = (int32_t)k;
    /* The data order has its own generator, so that changing the model (and with it
     * the draws of noise) does not change which images come together. */
    rng data_rng;
    rng_seed(&data_rng, s->seed ^ 0x5eedda7aull);

    tr_progress pr = {.live = o->progress < 0 ? isatty(2) : o->progress, .start = now()};
    int batch = s->data.batch, rc = AG_OK;
    int64_t step = 0;
    for (int epoch = 1; epoch <= s->epochs && rc == AG_OK; epoch++) {
        if (s->data.shuffle) rng_shuffle(&data_rng, order, tr->count);
        double epoch_start = now();
        tr_means train = {0};
        for (int64_t at = 0; at < tr->count; at += batch) {
            int n = (int)(tr->count - at < batch ? tr->count - at : batch);
            fill_batch(p, tr, order, at, n);
            if (pg_train_step(p, n)) {
                rc = ag_errorf(err, (ag_loc){0}, "%s (epoch %d, step %lld)", p->step.err.msg, epoch,
                               (long long)step + 1);
                break;
            }
            step++;
            int bad;
            if (nonfinite(p, &bad)) {
                rc = ag_errorf(err, (ag_loc){0}, "training diverged: '%s' is %g at epoch %d, step %lld",
                               p->log_names[bad], p->logs[bad]->data[0], epoch, (long long)step);
                break;
            }
            means_add(&train, p, n);
            if (step % s->log_every == 0) {
                fprintf(mf, "{\"kind\":\"step\",\"epoch\":%d,\"step\":%lld,\"seconds\":%.3f", epoch,
                        (long long)step, now() - pr.start);
                for (int k = 0; k < p->nlogs; k++) {
                    fprintf(mf, ",\"%s\":", p->log_names[k]);
                    json_num(mf, p->logs[k]->data[0]);
                }
                fputs("}\n", mf);
            }
            progress(&pr, p, epoch, at + n, tr->count, epoch_start, 0);
        }
        if (rc) break;
        progress(&pr, p, epoch, tr->count, tr->count, epoch_start, 1);
        if (pr.live) fputc('\n', stderr);

        tr_means test = {0};
        if (d->has_test && evaluate(p, &d->test, &test, err)) {
            rc = AG_ERR;
            break;
        }
        fprintf(mf, "{\"kind\":\"epoch\",\"epoch\":%d,\"step\":%lld,\"seconds\":%.3f", epoch, (long long)step,
                now() - pr.start);
        printf("epoch %d/%d", epoch, s->epochs);
        for (int k = 0; k < p->nlogs; k++) {
            double v = train.sum[k] / (double)train.count;
            fprintf(mf, ",\"train_%s\":", p->log_names[k]);
            json_num(mf, v);
            printf("  %s %.4f", p->log_names[k], v);
        }
        for (int k = 0; k < p->nlogs && test.count; k++) {
            double v = test.sum[k] / (double)test.count;
            fprintf(mf, ",\"test_%s\":", p->log_names[k]);
            json_num(mf, v);
            printf("  test_%s %.4f", p->log_names[k], v);
        }
        fputs("}\n", mf);
        fflush(mf);
        printf("\n");
        fflush(stdout);
        if (p->has_sample && write_samples(p, dir, epoch, err)) rc = AG_ERR;
    }
    free(order);
    if (fclose(mf) && rc == AG_OK)
        rc = ag_errorf(err, (ag_loc){0}, "%s: cannot write the metrics: %s", path, strerror(errno));
    return rc;
}
