/* train.c — epochs, batches, metrics, progress, sample grids. */
#include "aigc/train.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aigc/afile.h"
#include "aigc/ckpt.h"
#include "aigc/hooks.h"
#include "aigc/png.h"
#include "aigc/pool.h"
#include "aigc/safetensors.h"

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

/* The test split, loaded on a thread of its own while the caller inflates the training
 * split: Fashion-MNIST's 10,000 test images take 0.06 s of zlib, hidden behind the
 * training images' 0.3 s. */
typedef struct test_load {
    const char *dir;
    idx_dataset *out;
    ag_error err;
    int rc;
} test_load;

static void *load_test(void *arg)
{
    test_load *t = arg;
    t->rc = idx_load_split(t->dir, "t10k", t->out, &t->err);
    return NULL;
}

static int load_images(const sp_spec *s, tr_data *d, ag_error *err)
{
    ag_error e;
    /* The test split is optional: without it there is no test loss. But a test file
     * that is there and broken is an error, not a quiet lack of test loss. */
    test_load t = {s->data.path, &d->test, {{0}}, AG_OK};
    pthread_t th;
    int has_test = split_present(s->data.path, "t10k");
    int threaded = has_test && tp_threads() > 1 && pthread_create(&th, NULL, load_test, &t) == 0;
    int rc = idx_load_split(s->data.path, "train", &d->train, &e);
    if (threaded)
        pthread_join(th, NULL);
    else if (has_test && rc == AG_OK)
        load_test(&t);
    char hint[4200];
    if (rc != AG_OK)
        return ag_errorf(err, s->data.path_loc, "cannot load the training data: %s%s", e.msg,
                         ag_relative_hint(s->data.path, hint, sizeof hint));
    if (has_test) {
        if (t.rc != AG_OK)
            return ag_errorf(err, s->data.path_loc, "cannot load the test data: %s", t.err.msg);
        d->has_test = 1;
        if (d->test.rows != d->train.rows || d->test.cols != d->train.cols)
            return ag_errorf(err, s->data.path_loc, "the test images are %dx%d but the training images %dx%d",
                             d->test.rows, d->test.cols, d->train.rows, d->train.cols);
    }
    return AG_OK;
}

static int load_text(const sp_spec *s, tr_data *d, ag_error *err)
{
    ag_error e;
    const sp_data *sd = &s->data;
    char hint[4200];
    if (tx_load(sd->path, sd->test_fraction, &d->text, &e))
        return ag_errorf(err, sd->path_loc, "cannot load the text: %s%s", e.msg,
                         ag_relative_hint(sd->path, hint, sizeof hint));
    int len = sd->context + 1;
    if (d->text.ntrain < len)
        return ag_errorf(err, sd->path_loc,
                         "%s: the training split holds %lld bytes, fewer than one window of context + 1 = %d; "
                         "use a smaller context or more text", sd->path, (long long)d->text.ntrain, len);
    if (sd->test_fraction > 0 && d->text.ntest < len)
        return ag_errorf(err, sd->path_loc,
                         "%s: the test split holds %lld bytes, fewer than one window of context + 1 = %d; "
                         "raise data.test, or set it to 0 for no test split", sd->path,
                         (long long)d->text.ntest, len);
    tx_windows(d->text.train, d->text.ntrain, len, &d->train);
    if (sd->test_fraction > 0) {
        tx_windows(d->text.test, d->text.ntest, len, &d->test);
        d->has_test = 1;
    }
    /* The program sees the vocabulary as the number of classes of every token. */
    d->train.classes = d->test.classes = d->text.vocab;
    return AG_OK;
}

/* One loader per kind of data, indexed by sp_data_kind. */
static int (*const loaders[])(const sp_spec *, tr_data *, ag_error *) = {
    [SP_DATA_IMAGES] = load_images,
    [SP_DATA_TEXT] = load_text,
};

int tr_load_data(const sp_spec *s, tr_data *d, ag_error *err)
{
    memset(d, 0, sizeof *d);
    d->kind = s->data.kind;
    AG_ASSERT((size_t)d->kind < AG_COUNTOF(loaders));
    if (loaders[d->kind](s, d, err) == AG_OK) return AG_OK;
    tr_free_data(d);
    return AG_ERR;
}

/* The checkpoint's record of the data: "ROWSxCOLS CLASSES", and for text the
 * vocabulary's bytes in hex, in token order. */
static void data_record(const tr_data *d, char *data, size_t n, char *vocab)
{
    snprintf(data, n, "%dx%d %d", d->train.rows, d->train.cols, d->train.classes);
    for (int k = 0; k < d->text.vocab; k++) sprintf(vocab + 2 * k, "%02x", d->text.bytes[k]);
    vocab[2 * d->text.vocab] = 0;
}

int tr_data_recorded(const sp_spec *s, const char *path, const ag_error *absent, tr_data *d)
{
    sf_file f;
    ag_error ignored;
    if (sf_open(&f, path, &ignored)) return 0;
    const char *data = sf_meta_get(&f, "data"), *vocab = sf_meta_get(&f, "vocab");
    memset(d, 0, sizeof *d);
    d->kind = s->data.kind;
    int rows, cols, classes, used, ok = data && sscanf(data, "%dx%d %d%n", &rows, &cols, &classes, &used) == 3 &&
                                        !data[used] && rows > 0 && cols > 0 && classes > 0 && classes <= 1 << 16;
    /* Text: the vocabulary, distinct bytes in increasing order, one a class. */
    if (ok && d->kind == SP_DATA_TEXT) {
        size_t len = vocab ? strlen(vocab) : 0;
        ok = len > 0 && len % 2 == 0 && (int)len / 2 == classes && classes <= 256;
        memset(d->text.id, -1, sizeof d->text.id);
        for (int k = 0; ok && k < classes; k++) {
            unsigned b = 0;
            ok = isxdigit((unsigned char)vocab[2 * k]) && isxdigit((unsigned char)vocab[2 * k + 1]) &&
                 sscanf(vocab + 2 * k, "%2x", &b) == 1 && (k == 0 || b > d->text.bytes[k - 1]);
            if (!ok) break;
            d->text.bytes[k] = (uint8_t)b;
            d->text.id[b] = (int16_t)k;
        }
        d->text.vocab = classes;
    }
    sf_close(&f);
    if (!ok) {
        tr_free_data(d);
        return 0;
    }
    d->train.rows = d->test.rows = rows;
    d->train.cols = d->test.cols = cols;
    d->train.classes = d->test.classes = classes;
    d->recorded = 1;
    d->absent = *absent;
    return 1;
}

void tr_free_data(tr_data *d)
{
    idx_dataset_free(&d->train);
    idx_dataset_free(&d->test);
    tx_free(&d->text);
    memset(d, 0, sizeof *d);
}

void tr_print_data(const sp_spec *s, const tr_data *d, FILE *out)
{
    if (d->kind != SP_DATA_TEXT) return;
    const tx_corpus *c = &d->text;
    fprintf(out, "data: text from %s: %d file%s, %lld bytes, a vocabulary of %d bytes\n", s->data.path, c->nfiles,
            c->nfiles == 1 ? "" : "s", (long long)c->size, c->vocab);
    fprintf(out, "  train %lld bytes: %lld windows of %d; test %lld bytes: %lld windows\n\n", (long long)c->ntrain,
            (long long)d->train.count, d->train.cols, (long long)c->ntest, (long long)d->test.count);
}

/* Items [at, at + n) of ds (in `order` when given) into a graph's pixel and label
 * inputs, bytes to floats per batch: the data set stays uint8, a quarter of the memory. */
static void fill_batch(ag_node *pixels, ag_node *labels, const idx_dataset *ds, const int32_t *order, int64_t at,
                       int n)
{
    int64_t px = (int64_t)ds->rows * ds->cols;
    for (int k = 0; k < n; k++) {
        int64_t item = order ? order[at + k] : at + k;
        const uint8_t *src = ds->images.data + item * px;
        float *dst = pixels->data + k * px;
        for (int64_t j = 0; j < px; j++) dst[j] = (float)src[j];
        labels->data[k] = (float)ds->labels.data[item];
    }
}

/* -------------------------------------------------------------- progress -- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The progress line shows the logged values of the last batch that was not skipped
 * (train.on_nan: skip), not the skipped one's -inf or NaN: `shown` of them, the rest
 * would not fit on the line anyway. */
enum { TR_SHOWN = 16 };
typedef struct tr_progress {
    int live;
    double start, last;
    int at_epoch;       /* the epoch and position of the last line written */
    int64_t at;
    int shown;
    float values[TR_SHOWN];
} tr_progress;

static void fmt_time(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* `done` of the epoch's `total` samples, `from` of them done before this process
 * started on the epoch (a resumed run): the line shows where the epoch is, the rate and
 * the ETA count what this process did. */
static void progress(tr_progress *pr, const pg_program *p, int epoch, int64_t done, int64_t total,
                     int64_t from, int64_t skipped, double epoch_start, int final)
{
    double t = now();
    /* A live bar redraws ten times a second; a log file gets a line every 10 s. */
    if (!final && t - pr->last < (pr->live ? 0.1 : 10.0)) return;
    /* An epoch of one batch would end with its first line written again. */
    if (final && !pr->live && pr->at_epoch == epoch && pr->at == done) return;
    pr->last = t;
    pr->at_epoch = epoch;
    pr->at = done;
    const sp_spec *s = p->spec;
    double rate = (double)(done - from) / fmax(t - epoch_start, 1e-9);
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
    for (int j = 0; j < pr->shown && k < (int)sizeof line - 40; j++)
        k += snprintf(line + k, sizeof line - (size_t)k, " %s %.4g", p->log_names[j], pr->values[j]);
    if (skipped && k < (int)sizeof line - 40)
        snprintf(line + k, sizeof line - (size_t)k, " skipped %lld", (long long)skipped);
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
    char failed[4096];
    if (ag_mkdirs(path, failed, sizeof failed) == AG_OK) return AG_OK;
    const char *why = strerror(errno);
    /* A directory above it that could not be made, or a file in its way, is named. */
    if (strcmp(failed, path) != 0)
        return ag_errorf(err, (ag_loc){0}, "%s: cannot create the run directory: %s: %s", path, failed, why);
    return ag_errorf(err, (ag_loc){0}, "%s: cannot create the run directory: %s", path, why);
}

/* A text input's bytes as token ids, the same row for every draw. */
static int text_input(pg_program *p, int k, int j, const tr_data *d, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    const sp_input *in = &q->spec->inputs[j];
    int64_t len = q->inputs[j]->shape.d[1];
    for (int64_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)in->text[i];
        if (d->text.id[b] < 0) {
            char byte[16], head[300];
            if (b >= 32 && b < 127)
                snprintf(byte, sizeof byte, "'%c' (0x%02x)", b, b);
            else
                snprintf(byte, sizeof byte, "0x%02x", b);
            /* The value the command line gave is named; the spec's, by its place. */
            if (in->given)
                snprintf(head, sizeof head, "%s", in->given);
            else
                snprintf(head, sizeof head, "input '%s'", in->name);
            return ag_errorf(err, in->given ? (ag_loc){0} : in->loc,
                             "%s: the byte %s at offset %lld is not in the vocabulary of %s (%d bytes)", head, byte,
                             (long long)i, p->spec->data.path, d->text.vocab);
        }
        for (int r = 0; r < q->count; r++) q->inputs[j]->data[r * len + i] = d->text.id[b];
    }
    return AG_OK;
}

int tr_sample_inputs(pg_program *p, int k, const tr_data *d, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    const sp_sample *sm = q->spec;
    int64_t px = (int64_t)p->rows * p->cols;
    /* Input nodes are leaves no forward writes, like the schedule's constants: written
     * once, they serve every epoch's grid and every draw of eval --quality. */
    if (q->inputs_written) return AG_OK;
    for (int j = 0; j < sm->ninputs; j++) {
        const sp_input *in = &sm->inputs[j];
        if (in->kind == SP_INPUT_TEXT && text_input(p, k, j, d, err)) return AG_ERR;
        if (in->kind != SP_INPUT_IMAGE) continue;
        if (!in->path)
            return ag_errorf(err, in->loc, "sample section '%s' needs an image for its input '%s': "
                             "give --input %s=FILE.png", sm->name, in->name, in->name);
        img_gray img;
        if (img_read_gray(in->path, &img, err)) return AG_ERR;
        if (img.h != p->rows || img.w != p->cols) {
            ag_errorf(err, (ag_loc){0}, "%s: the image is %dx%d, but the data's images are %dx%d (input '%s')",
                      in->path, img.w, img.h, p->cols, p->rows, in->name);
            img_gray_free(&img);
            return AG_ERR;
        }
        /* Every draw of the section starts from the same image. */
        for (int r = 0; r < q->count; r++)
            for (int64_t i = 0; i < px; i++) q->inputs[j]->data[r * px + i] = img.pixels[i];
        img_gray_free(&img);
    }
    q->inputs_written = 1;
    return AG_OK;
}

int tr_draw_samples(pg_program *p, int k, const tr_data *d, int64_t first, uint64_t seed, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    if (tr_sample_inputs(p, k, d, err)) return AG_ERR;
    /* test_x: the test split's images from first on, wrapping around its end. */
    if (d->has_test) {
        int64_t px = (int64_t)p->rows * p->cols, at = first % d->test.count;
        for (int j = 0; j < q->count; j++, at = (at + 1) % d->test.count) {
            const uint8_t *src = d->test.images.data + at * px;
            for (int64_t i = 0; i < px; i++) q->pixels->data[j * px + i] = src[i];
            q->labels->data[j] = d->test.labels.data[at];
        }
    }
    return pg_sample(p, k, seed, err);
}

/* The first n texts of a text section, decoded: to stdout for "-", else to a file
 * replaced whole (af_). */
static int write_text(pg_program *p, int k, const tr_data *d, const float *ids, const char *path, int n,
                      ag_error *err)
{
    int64_t len = p->samples[k].image->shape.d[1];
    for (int64_t j = 0; j < (int64_t)n * len; j++) {
        float v = ids[j];
        if (!(v >= 0 && v < d->text.vocab && v == floorf(v)))
            return ag_errorf(err, p->samples[k].spec->text->loc, "%s: 'text' gives the token id %g, not one "
                             "of the vocabulary's [0, %d)", p->samples[k].spec->name, v, d->text.vocab);
    }
    int out = strcmp(path, "-") != 0;
    af_file file;
    if (out && af_begin(&file, path, err) != AG_OK) return AG_ERR;
    FILE *f = out ? file.fp : stdout;
    for (int r = 0; r < n; r++) {
        if (n > 1) fprintf(f, "%s--- sample %d of %d\n", r ? "\n" : "", r + 1, n);
        for (int64_t j = 0; j < len; j++) fputc(d->text.bytes[(int)ids[r * len + j]], f);
        fputc('\n', f);
    }
    if (!out) return fflush(f) ? ag_errorf(err, (ag_loc){0}, "stdout: %s", strerror(errno)) : AG_OK;
    return af_commit(&file, err);
}

/* The first `limit` images (all when 0) of section k into a PNG grid; a limit other
 * than the section's own count lays them out as square as fits. A text section writes
 * its texts instead. A limit above the count, which hooks may ask for (aigc.sample{n =
 * ...}), is drawn in rounds of it, the section's graph being planned for that many:
 * each round with the next seed and the next test rows, as eval --quality draws. The
 * first round runs last, so that a trajectory strip is that of the grid's first image,
 * as it is without rounds. */
static int write_grid(pg_program *p, int k, const tr_data *d, const char *path, uint64_t seed, int limit,
                      ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    int images = limit > 0 ? limit : q->images, rounds = (images + q->images - 1) / q->images;
    int64_t per = ag_numel(&q->image->shape) / q->images;
    float *buf = rounds > 1 ? ag_xmalloc((size_t)(images * per) * sizeof *buf) : NULL;
    for (int r = rounds - 1; r >= 0; r--) {
        if (tr_draw_samples(p, k, d, (int64_t)r * q->images, seed + (uint64_t)r, err)) {
            free(buf);
            return AG_ERR;
        }
        int m = images - r * q->images < q->images ? images - r * q->images : q->images;
        if (buf) memcpy(buf + (int64_t)r * q->images * per, q->image->data, (size_t)(m * per) * sizeof *buf);
    }
    const float *x = buf ? buf : q->image->data;
    int rc;
    if (q->text) {
        rc = write_text(p, k, d, x, path, images, err);
        free(buf);
        return rc;
    }
    int rows = q->grid_rows, cols = q->grid_cols;
    if (images != q->images) {
        cols = (int)ceil(sqrt((double)images));
        rows = (images + cols - 1) / cols;
    }
    float lo = q->lo, hi = q->hi;
    int64_t n = per * images;
    if (!(lo < hi)) {
        lo = INFINITY, hi = -INFINITY;
        for (int64_t j = 0; j < n; j++)
            if (isfinite(x[j])) lo = fminf(lo, x[j]), hi = fmaxf(hi, x[j]);
        if (!(lo < hi)) lo = 0, hi = 1;
    }
    rc = img_write_grid(path, x, images, p->rows, p->cols, q->channels, rows, cols, lo, hi, 2, err);
    free(buf);
    if (rc || !q->strip) return rc;
    char strip[4200];
    if (tr_strip_path(path, strip, sizeof strip))
        return ag_errorf(err, (ag_loc){0}, "%s: the path is too long", path);
    return img_write_grid(strip, q->strip, q->strip_frames, p->rows, p->cols, q->channels, 1,
                          q->strip_frames, lo, hi, 2, err);
}

int tr_strip_path(const char *grid, char *buf, size_t n)
{
    size_t len = strlen(grid);
    if (len >= 4 && !strcmp(grid + len - 4, ".png")) len -= 4;
    return snprintf(buf, n, "%.*s-strip.png", (int)len, grid) >= (int)n ? AG_ERR : AG_OK;
}

int tr_write_samples(pg_program *p, int k, const tr_data *d, const char *path, uint64_t seed,
                     ag_error *err)
{
    return write_grid(p, k, d, path, seed, 0, err);
}

/* ------------------------------------------------------------------- run -- */

enum { TR_MAX_LOGS = 64, TR_MAX_OPTIMS = 16 };

typedef struct tr_means {
    double sum[TR_MAX_LOGS];
    int64_t count;
} tr_means;

/* What exact resume needs beyond the checkpoint module's fields: the epoch's running
 * means, so the epoch row comes out the same, and how much of the metrics file the
 * checkpoint had seen, so rows written after it are dropped on resume. */
typedef struct tr_record {
    tr_means train;
    int64_t metrics_bytes;
    /* The spec's learning rates when saved: a resume whose spec changed one takes the
     * new one; otherwise the saved rate stands (a hook's schedule may have moved it). */
    double spec_lr[TR_MAX_OPTIMS];
    /* train.on_nan: skip: batches skipped in this epoch, and in a row up to now. */
    int64_t skipped, skipped_in_row;
} tr_record;

/* The logged values as graph g (the step's, or a copy of it) last made them, into v. */
static void logged_values(const pg_program *p, const ag_graph *g, float *v)
{
    for (int k = 0; k < p->nlogs; k++) v[k] = g->nodes[p->logs[k]->id]->data[0];
}

/* A batch of n's logged values v into the running means. */
static void means_add(tr_means *m, const pg_program *p, const float *v, int n)
{
    for (int k = 0; k < p->nlogs && k < TR_MAX_LOGS; k++) m->sum[k] += (double)v[k] * n;
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

ag_node *tr_logits(const pg_program *p)
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
    float *values;             /* [nbatches][nlogs] */
    int64_t *right;            /* [nbatches]: images classified right */
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
            int64_t b = atomic_fetch_add(&j->next, 1);
            if (b >= j->nbatches) break;
            int n = batch_size_at(j->ds->count, batch, b);
            fill_batch(pixels, labels, j->ds, NULL, b * batch, n);
            rng_seed_stream(&r, j->seed, (uint64_t)b);
            ag_graph_set_batch(g, n);
            if (ag_forward(g, 0, g->n)) {
                j->failed[k] = b;
                j->err[k] = g->err;
                atomic_store(&j->stop, 1);
                break;
            }
            logged_values(p, g, j->values + b * p->nlogs);
            if (j->logits) j->right[b] = count_correct(g->nodes[j->logits->id], labels->data, n);
        }
    }
}

/* The test means of the logged values, and with a `logits` tensor, how many test
 * images it classifies right (*correct; -1 without one). A model with `ema:` is
 * evaluated with its averaged weights, the ones its samples are drawn with. A failing
 * batch's message is the first one's, as if they had run in order. */
static int evaluate(pg_program *p, const idx_dataset *ds, tr_means *m, int64_t *correct, ag_error *err)
{
    int batch = p->spec->data.batch;
    eval_job j = {.p = p, .ds = ds, .logits = tr_logits(p), .nbatches = (ds->count + batch - 1) / batch,
                  .seed = p->spec->seed ^ 0xe7a1ull};
    int ngraphs = pg_eval_graphs(p, tp_threads(), j.graphs);
    j.values = ag_xmalloc((size_t)(j.nbatches * p->nlogs + 1) * sizeof *j.values);
    j.right = ag_xmalloc((size_t)(j.nbatches + 1) * sizeof *j.right);
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
    memset(m, 0, sizeof *m);
    *correct = j.logits ? 0 : -1;
    for (int64_t b = 0; b < j.nbatches && j.failed[first] == j.nbatches; b++) {
        means_add(m, p, j.values + b * p->nlogs, batch_size_at(ds->count, batch, b));
        if (j.logits) *correct += j.right[b];
    }
    free(j.values);
    free(j.right);
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
        json_num(out, v);
    } else {
        fprintf(out, "%s ", name);
        fprintf(out, fmt, v);
        fputc('\n', out);
    }
    *first = 0;
}

int tr_evaluate(pg_program *p, const tr_data *d, FILE *out, int json, ag_error *err)
{
    if (!d->has_test)
        return ag_errorf(err, p->spec->data.path_loc, d->kind == SP_DATA_TEXT
                         ? "the data has no test split (data.test is 0)" : "the data has no test split (t10k files)");
    tr_means m;
    int64_t correct;
    if (evaluate(p, &d->test, &m, &correct, err)) return AG_ERR;
    int first = 1;
    if (json) fputc('{', out);
    for (int k = 0; k < p->nlogs; k++) {
        char name[160];
        snprintf(name, sizeof name, "test_%s", p->log_names[k]);
        eval_put(out, json, &first, name, m.sum[k] / (double)m.count, "%.6g");
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

/* Everything a run carries from step to step. */
typedef struct tr_run_state {
    pg_program *p;
    const tr_data *d;
    const tr_options *o;
    char dir[4096];
    int dir_fd;             /* the run directory, locked while the run writes in it */
    char metrics_path[4200];
    char resume_dir[4096];  /* the directory of the checkpoint resumed from */
    FILE *mf;
    int32_t *order;
    float *logged;          /* the step's logged values, as the last batch made them */
    rng data_rng;
    int epoch;              /* 1-based, the one in progress */
    int64_t cursor;         /* next position in order */
    int64_t step;
    tr_record rec;
    tr_progress pr;
    lh_state *hooks;
    lh_run hr;
    lh_optim *hoptims;
    lh_tensor *htensors;
    double *hvalues, *htest;
    int stop;
    int hook_failed;        /* the last callback raised: the run is saved before it ends */
    char data_meta[48], vocab_meta[2 * 256 + 1]; /* the checkpoint's record of the data */
} tr_run_state;

/* After each epoch every section: the first as samples-epoch-NNN.png, the others
 * under their names; a text section as .txt. */
static int epoch_samples(tr_run_state *st, ag_error *err)
{
    pg_program *p = st->p;
    for (int k = 0; k < p->nsamples; k++) {
        if (!p->samples[k].spec->each_epoch) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s-epoch-%03d.%s", st->dir, k ? p->samples[k].spec->name : "samples",
                 st->epoch, p->samples[k].text ? "txt" : "png");
        if (tr_write_samples(p, k, st->d, path, p->spec->seed, err)) return AG_ERR;
    }
    return AG_OK;
}

static const char *const *optim_names(const sp_spec *s, const char **buf)
{
    for (int k = 0; k < s->noptims; k++) buf[k] = s->optims[k].name;
    return buf;
}

/* A name for the resolved spec: FNV-1a over its text. Informational: resume checks
 * the parameters and optimizers themselves, so that epochs or lr may change. */
static void spec_hash(const sp_spec *s, char *buf, size_t n)
{
    snprintf(buf, n, "%016llx", (unsigned long long)ag_fnv1a(AG_FNV_BASIS, s->doc.src, s->doc.src_len));
}

enum { TR_NFIELDS = 6 };

/* The checkpoint's view of the run; fields (TR_NFIELDS) name the record's values. */
static ck_run ck_view(tr_run_state *st, rng **rngs, const char **names, ck_field *fields, char *hash,
                      size_t hlen)
{
    pg_program *p = st->p;
    spec_hash(p->spec, hash, hlen);
    rngs[0] = &p->rng;
    rngs[1] = &st->data_rng;
    tr_record *rec = &st->rec;
    int nlogs = p->nlogs < TR_MAX_LOGS ? p->nlogs : TR_MAX_LOGS;
    int nopt = p->spec->noptims < TR_MAX_OPTIMS ? p->spec->noptims : TR_MAX_OPTIMS;
    fields[0] = (ck_field){"train_sum", CK_F64, nlogs, rec->train.sum};
    fields[1] = (ck_field){"train_count", CK_I64, 1, &rec->train.count};
    fields[2] = (ck_field){"metrics_bytes", CK_I64, 1, &rec->metrics_bytes};
    fields[3] = (ck_field){"spec_lr", CK_F64, nopt, rec->spec_lr};
    fields[4] = (ck_field){"skipped", CK_I64, 1, &rec->skipped};
    fields[5] = (ck_field){"skipped_in_row", CK_I64, 1, &rec->skipped_in_row};
    return (ck_run){.spec_name = p->spec->name, .spec_hash = hash,
                    .data = st->data_meta, .vocab = st->d->kind == SP_DATA_TEXT ? st->vocab_meta : NULL,
                    .params = &p->params,
                    .noptims = p->spec->noptims, .optims = p->optims,
                    .optim_names = optim_names(p->spec, names), .nrngs = 2, .rngs = rngs,
                    .order = st->order, .norder = st->d->train.count, .cursor = st->cursor,
                    .epoch = st->epoch, .step = st->step, .fields = fields, .nfields = TR_NFIELDS};
}

static int save(tr_run_state *st, const char *name, ag_error *err)
{
    rng *rngs[2];
    const char *names[64];
    ck_field fields[TR_NFIELDS];
    char hash[32];
    fflush(st->mf);
    st->rec.metrics_bytes = ftell(st->mf);
    for (int k = 0; k < st->p->spec->noptims && k < TR_MAX_OPTIMS; k++)
        st->rec.spec_lr[k] = st->p->spec->optims[k].h.lr;
    ck_run r = ck_view(st, rngs, names, fields, hash, sizeof hash);
    return ck_save(st->dir, name, &r, err);
}

static int is_snapshot(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return !strncmp(e->d_name, "step-", 5) && n > 6 && !strcmp(e->d_name + n - 6, ".state");
}

/* `last` always; with train.checkpoint.keep K, numbered ones too, K at most. */
static int checkpoint(tr_run_state *st, ag_error *err)
{
    const sp_spec *s = st->p->spec;
    if (save(st, "last", err)) return AG_ERR;
    if (s->ckpt_keep == 0) return AG_OK;
    char name[64];
    snprintf(name, sizeof name, "step-%08lld", (long long)st->step);
    if (save(st, name, err)) return AG_ERR;
    /* Zero-padded step numbers sort by name; the oldest go first. */
    struct dirent **list;
    int n = scandir(st->dir, &list, is_snapshot, alphasort);
    for (int k = 0; k < n; k++) {
        if (k < n - s->ckpt_keep) {
            char path[4400];
            size_t len = strlen(list[k]->d_name) - 6;
            snprintf(path, sizeof path, "%s/%.*s.state", st->dir, (int)len, list[k]->d_name);
            unlink(path);
            snprintf(path, sizeof path, "%s/%.*s.safetensors", st->dir, (int)len, list[k]->d_name);
            unlink(path);
        }
        free(list[k]);
    }
    if (n >= 0) free(list);
    return AG_OK;
}

/* --resume takes a run directory (its `last`) or a checkpoint's path, with or without
 * its .safetensors or .state ending. */
static int resume(tr_run_state *st, const char *from, ag_error *err)
{
    char dir[4096], name[512];
    if (ck_locate(from, dir, sizeof dir, name, sizeof name))
        return ag_errorf(err, (ag_loc){0}, "%s: no run directory or checkpoint to resume from", from);
    rng *rngs[2];
    const char *names[64];
    ck_field fields[TR_NFIELDS];
    char hash[32];
    ck_run r = ck_view(st, rngs, names, fields, hash, sizeof hash);
    r.spec_hash = NULL; /* a changed epoch count or learning rate may resume */
    if (ck_load(dir, name, &r, err)) return AG_ERR;
    st->epoch = r.epoch;
    st->cursor = r.cursor;
    st->step = r.step;
    snprintf(st->resume_dir, sizeof st->resume_dir, "%s", dir);
    for (int k = 0; k < st->p->spec->noptims && k < TR_MAX_OPTIMS; k++)
        if (st->p->spec->optims[k].h.lr != st->rec.spec_lr[k])
            opt_set_lr(&st->p->optims[k], -1, st->p->spec->optims[k].h.lr);
    /* The hooks' run.lr shows the learning rates the checkpoint restored. */
    for (int k = 0; st->hoptims && k < st->p->spec->noptims; k++)
        st->hoptims[k].lr = st->p->optims[k].groups[0].lr;
    return AG_OK;
}

/* Whether the resumed run has done the epochs asked for, or is past them (it stopped in
 * a later epoch): then it says so and the run directory stays as it is, where it would
 * have ended without a word or trained on beyond the count. An epoch whose last step is
 * done but whose end is not recorded is still to finish. */
static int nothing_to_train(const tr_run_state *st)
{
    int epochs = st->p->spec->epochs, e = st->epoch;
    int64_t count = st->d->train.count;
    if (st->cursor == count && !st->rec.train.count && e == epochs)
        fprintf(stderr, "%s: nothing to train: the run has done its %d epoch%s (--epochs %d or more trains on)\n",
                st->resume_dir, e, e == 1 ? "" : "s", e + 1);
    else if (st->cursor == count && !st->rec.train.count && e > epochs)
        fprintf(stderr, "%s: nothing to train: the run has done %d epochs, more than %d (--epochs %d or more trains on)\n",
                st->resume_dir, e, epochs, e + 1);
    else if (st->cursor < count && e > epochs)
        fprintf(stderr, "%s: nothing to train: the run stopped in epoch %d, past %d (--epochs %d or more finishes it)\n",
                st->resume_dir, e, epochs, e);
    else
        return 0;
    return 1;
}

/* The metrics up to the checkpoint. Its own run's file is cut there: rows written after
 * it belong to the lost part of the run. Resuming into another directory, that much of
 * the checkpoint's run is copied (none when its metrics are gone), so that an earlier
 * file there is replaced whole, never cut at a foreign offset. */
static int resume_metrics(tr_run_state *st, ag_error *err)
{
    struct stat a, b;
    if (stat(st->resume_dir, &a) == 0 && stat(st->dir, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        if (truncate(st->metrics_path, st->rec.metrics_bytes) != 0)
            return ag_errorf(err, (ag_loc){0}, "%s: cannot trim to the checkpoint: %s", st->metrics_path,
                             strerror(errno));
        return AG_OK;
    }
    char from[4200];
    snprintf(from, sizeof from, "%s/metrics.jsonl", st->resume_dir);
    FILE *in = fopen(from, "rb"), *out = fopen(st->metrics_path, "wb");
    int64_t left = in ? st->rec.metrics_bytes : 0;
    char buf[65536];
    while (out && left > 0) {
        size_t n = fread(buf, 1, left < (int64_t)sizeof buf ? (size_t)left : sizeof buf, in);
        if (n == 0 || fwrite(buf, 1, n, out) != n) break;
        left -= (int64_t)n;
    }
    int bad = !out || ferror(out);
    if (in) fclose(in);
    if (out && fclose(out)) bad = 1;
    if (bad)
        return ag_errorf(err, (ag_loc){0}, "%s: cannot write the metrics: %s", st->metrics_path,
                         strerror(errno));
    if (left > 0)
        return ag_errorf(err, (ag_loc){0}, "%s: shorter than the %lld bytes its checkpoint has seen", from,
                         (long long)st->rec.metrics_bytes);
    return AG_OK;
}

/* ----------------------------------------------------------------- hooks -- */

static void hook_print(void *ctx, const char *line)
{
    const tr_run_state *st = ctx;
    if (st->pr.live) fputs("\r\033[K", stderr);
    fprintf(stderr, "%s\n", line);
}

static int hooks_open(tr_run_state *st, ag_error *err)
{
    const pg_program *p = st->p;
    const sp_spec *s = p->spec;
    if (!s->hooks) return AG_OK;
    lh_options lo = {.unsafe = st->o->unsafe_hooks, .warn = st->o->warn_hooks, .print = hook_print,
                     .print_ctx = st};
    ag_error e;
    if (lh_open(&st->hooks, s->hooks, &lo, &e)) return ag_errorf(err, s->hooks_loc, "%s", e.msg);
    st->hoptims = ag_xcalloc((size_t)s->noptims, sizeof *st->hoptims);
    for (int k = 0; k < s->noptims; k++) st->hoptims[k] = (lh_optim){s->optims[k].name, p->optims[k].groups[0].lr, 0};
    st->htensors = ag_xcalloc((size_t)(p->nnamed ? p->nnamed : 1), sizeof *st->htensors);
    st->hvalues = ag_xcalloc((size_t)(p->nlogs ? p->nlogs : 1), sizeof *st->hvalues);
    st->htest = ag_xcalloc((size_t)(p->nlogs ? p->nlogs : 1), sizeof *st->htest);
    int64_t batch = s->data.batch;
    st->hr = (lh_run){.name = s->name, .dir = st->dir, .epochs = s->epochs,
                      .steps_per_epoch = (st->d->train.count + batch - 1) / batch, .noptims = s->noptims,
                      .optims = st->hoptims, .tensors = st->htensors};
    return AG_OK;
}

static void hooks_close(tr_run_state *st)
{
    if (st->hooks) lh_close(st->hooks);
    free(st->hoptims);
    free(st->htensors);
    free(st->hvalues);
    free(st->htest);
}

/* Calls a callback, then acts on what it asked for. */
static int hook(tr_run_state *st, lh_event ev, const tr_means *train, const tr_means *test, ag_error *err)
{
    pg_program *p = st->p;
    lh_run *r = &st->hr;
    r->epoch = st->epoch;
    r->step = st->step;
    r->samples = st->step ? st->step * p->spec->data.batch : 0;
    r->seconds = now() - st->pr.start;
    for (int k = 0; k < p->nlogs; k++)
        st->hvalues[k] = train ? train->sum[k] / (double)(train->count ? train->count : 1) : p->logs[k]->data[0];
    r->loss = (lh_scalars){p->nlogs, p->log_names, st->hvalues};
    r->test = (lh_scalars){0, p->log_names, st->htest};
    if (test && test->count) {
        for (int k = 0; k < p->nlogs; k++) st->htest[k] = test->sum[k] / (double)test->count;
        r->test.n = p->nlogs;
    }
    r->ntensors = ev == LH_ON_STEP ? p->nnamed : 0;
    for (int k = 0; k < r->ntensors; k++)
        st->htensors[k] = (lh_tensor){p->named[k], p->named_nodes[k]->data, p->named_nodes[k]->shape};

    int rc = lh_call(st->hooks, ev, r, err);
    st->hook_failed = rc == AG_ERR;
    if (rc == LH_WARNED) {
        hook_print(st, err->msg);
        rc = AG_OK;
    }
    if (rc) return AG_ERR;
    for (int k = 0; k < r->noptims; k++)
        if (r->optims[k].changed) opt_set_lr(&p->optims[k], -1, r->optims[k].lr);
    for (int k = 0; k < r->nsample_requests; k++) {
        char path[4400];
        const lh_sample_request *q = &r->sample_requests[k];
        if (q->path[0] == '/' || !q->path[0])
            snprintf(path, sizeof path, "%s", q->path[0] ? q->path : "");
        else
            snprintf(path, sizeof path, "%s/%s", st->dir, q->path);
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
        if (!q->path[0])
            snprintf(path, sizeof path, "%s/samples-step-%08lld-%d.%s", st->dir, (long long)st->step, k,
                     p->samples[sec].text ? "txt" : "png");
        if (write_grid(p, sec, st->d, path, p->spec->seed, q->n, err)) return AG_ERR;
    }
    if (r->save_checkpoint && checkpoint(st, err)) return AG_ERR;
    if (r->stop && !st->stop) {
        st->stop = 1;
        hook_print(st, r->stop_reason[0] ? r->stop_reason : "stopped by the hook script");
    }
    lh_clear(r);
    return AG_OK;
}

/* The hook's extra scalars go into the next metrics row. */
static void hook_logs(tr_run_state *st)
{
    for (int k = 0; k < st->hr.nlogs; k++) {
        fprintf(st->mf, ",\"%s\":", st->hr.logs[k].name);
        json_num(st->mf, st->hr.logs[k].value);
    }
    st->hr.nlogs = 0;
}

/* ---------------------------------------------------------------- epochs -- */

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

/* A logged value went NaN or infinite: name it, and the first node of the step that
 * made a non-finite value. */
static int diverged(tr_run_state *st, int bad, ag_error *err)
{
    const pg_program *p = st->p;
    char head[512];
    snprintf(head, sizeof head, "training diverged at epoch %d, step %lld: '%s' is %s", st->epoch,
             (long long)st->step, p->log_names[bad], nonfinite_name(p->logs[bad]->data[0]));
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
static int skip_batch(tr_run_state *st, ag_error *err)
{
    const pg_program *p = st->p;
    st->rec.skipped++;
    if (++st->rec.skipped_in_row <= p->spec->max_skipped) return AG_OK;
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
static int overflowed(tr_run_state *st, ag_error *err)
{
    const ex_stmt *u = update_stmt(st->p, st->p->bad_seg);
    return ag_errorf(err, u->loc,
                     "training diverged at epoch %d, step %lld: 'update %s' made a weight non-finite from a "
                     "finite loss and gradients; lower the learning rate",
                     st->epoch, (long long)st->step, u->names[0]);
}

/* SIGINT or SIGTERM: the step in progress finishes, a checkpoint is saved, the run
 * stops. A second signal ends the process at once. */
static volatile sig_atomic_t tr_signal;

static void on_signal(int sig)
{
    if (tr_signal) _exit(128 + sig);
    tr_signal = sig;
}

/* A skipped batch's values are left out (null): they are not the step's. */
static void step_row(tr_run_state *st, int skipped)
{
    const pg_program *p = st->p;
    fprintf(st->mf, "{\"kind\":\"step\",\"epoch\":%d,\"step\":%lld,\"seconds\":%.3f", st->epoch,
            (long long)st->step, now() - st->pr.start);
    for (int k = 0; k < p->nlogs; k++) {
        fprintf(st->mf, ",\"%s\":", p->log_names[k]);
        json_num(st->mf, skipped ? NAN : p->logs[k]->data[0]);
    }
    if (p->spec->on_nan_skip) fprintf(st->mf, ",\"skipped\":%lld", (long long)st->rec.skipped);
    hook_logs(st);
    fputs("}\n", st->mf);
}

static int train_epoch(tr_run_state *st, ag_error *err)
{
    pg_program *p = st->p;
    const sp_spec *s = p->spec;
    const idx_dataset *tr = &st->d->train;
    int batch = s->data.batch;
    double epoch_start = now();
    int64_t first = st->cursor;
    while (st->cursor < tr->count && !st->stop && !tr_signal) {
        int n = (int)(tr->count - st->cursor < batch ? tr->count - st->cursor : batch);
        fill_batch(p->pixels, p->labels, tr, st->order, st->cursor, n);
        int rc = pg_train_step(p, n);
        if (rc == AG_ERR)
            return ag_errorf(err, (ag_loc){0}, "%s (epoch %d, step %lld)", p->step.err.msg, st->epoch,
                             (long long)st->step + 1);
        st->step++;
        st->cursor += n;
        if (rc == PG_OVERFLOWED) return overflowed(st, err);
        if (rc == PG_SKIPPED) {
            if (skip_batch(st, err)) return AG_ERR;
        } else {
            int bad;
            if (nonfinite(p, &bad)) return diverged(st, bad, err);
            st->rec.skipped_in_row = 0;
            logged_values(p, &p->step, st->logged);
            means_add(&st->rec.train, p, st->logged, n);
            st->pr.shown = p->nlogs < TR_SHOWN ? p->nlogs : TR_SHOWN;
            memcpy(st->pr.values, st->logged, (size_t)st->pr.shown * sizeof *st->logged);
        }
        /* A failing hook still gets its step's row: the run is saved after it. */
        int hrc = rc == AG_OK && st->hooks && lh_has(st->hooks, LH_ON_STEP) ? hook(st, LH_ON_STEP, NULL, NULL, err)
                                                                           : AG_OK;
        if (st->step % s->log_every == 0) step_row(st, rc == PG_SKIPPED);
        if (hrc) return AG_ERR;
        if (s->ckpt_every && st->step % s->ckpt_every == 0 && checkpoint(st, err)) return AG_ERR;
        progress(&st->pr, p, st->epoch, st->cursor, tr->count, first, st->rec.skipped, epoch_start, 0);
    }
    progress(&st->pr, p, st->epoch, st->cursor, tr->count, first, st->rec.skipped, epoch_start, 1);
    if (st->pr.live) fputc('\n', stderr);
    return AG_OK;
}

static int end_epoch(tr_run_state *st, ag_error *err)
{
    pg_program *p = st->p;
    const sp_spec *s = p->spec;
    tr_means test = {0}, *train = &st->rec.train;
    int64_t correct = -1;
    if (st->d->has_test && evaluate(p, &st->d->test, &test, &correct, err)) return AG_ERR;
    if (st->hooks && st->d->has_test && hook(st, LH_ON_EVAL, train, &test, err)) return AG_ERR;
    if (st->hooks && hook(st, LH_ON_EPOCH_END, train, &test, err)) return AG_ERR;

    FILE *mf = st->mf;
    fprintf(mf, "{\"kind\":\"epoch\",\"epoch\":%d,\"step\":%lld,\"seconds\":%.3f", st->epoch,
            (long long)st->step, now() - st->pr.start);
    printf("epoch %d/%d", st->epoch, s->epochs);
    for (int k = 0; k < p->nlogs; k++) {
        double v = train->sum[k] / (double)(train->count ? train->count : 1);
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
    if (correct >= 0 && test.count) {
        double acc = (double)correct / (double)test.count;
        fprintf(mf, ",\"test_accuracy\":%.9g", acc);
        printf("  test_accuracy %.4f", acc);
    }
    /* Text is compared in bits per character: train.nll's test mean in that unit. */
    if (p->nll_log >= 0 && st->d->kind == SP_DATA_TEXT && test.count) {
        double bpc = test.sum[p->nll_log] / (double)test.count / M_LN2;
        fprintf(mf, ",\"test_bits_per_char\":");
        json_num(mf, bpc);
        printf("  test_bits_per_char %.4f", bpc);
    }
    if (s->on_nan_skip) {
        fprintf(mf, ",\"skipped\":%lld", (long long)st->rec.skipped);
        if (st->rec.skipped) printf("  skipped %lld", (long long)st->rec.skipped);
    }
    hook_logs(st);
    fputs("}\n", mf);
    fflush(mf);
    printf("\n");
    fflush(stdout);
    if (epoch_samples(st, err)) return AG_ERR;
    memset(train, 0, sizeof *train);
    st->rec.skipped = 0;
    return checkpoint(st, err);
}

static int run_epochs(tr_run_state *st, ag_error *err)
{
    const sp_spec *s = st->p->spec;
    const idx_dataset *tr = &st->d->train;
    if (st->hooks && hook(st, LH_ON_START, NULL, NULL, err)) return AG_ERR;
    for (;;) {
        /* A checkpoint taken after an epoch's last step but before its end was recorded
         * (a hook failed in on_eval or on_epoch_end, or asked for a save there): on
         * resume, that epoch ends first, its running means still in the record. */
        if (st->cursor == tr->count && st->rec.train.count && end_epoch(st, err)) return AG_ERR;
        if (st->cursor == tr->count) {
            /* The epoch in the record is over: the next one starts in a new order. */
            if (st->epoch >= s->epochs || st->stop || tr_signal) break;
            st->epoch++;
            st->cursor = 0;
            if (s->data.shuffle) rng_shuffle(&st->data_rng, st->order, tr->count);
        }
        if (train_epoch(st, err)) return AG_ERR;
        if (tr_signal) break;
        if (st->cursor < tr->count) break; /* stopped by a hook mid-epoch */
        if (end_epoch(st, err)) return AG_ERR;
    }
    if (tr_signal) {
        if (checkpoint(st, err)) return AG_ERR;
        return ag_errorf(err, (ag_loc){0},
                         "interrupted by %s at epoch %d, step %lld: saved %s/last; continue with --resume",
                         tr_signal == SIGINT ? "SIGINT" : "SIGTERM", st->epoch, (long long)st->step, st->dir);
    }
    if (st->stop && st->cursor < tr->count && checkpoint(st, err)) return AG_ERR;
    return st->hooks ? hook(st, LH_ON_END, NULL, NULL, err) : AG_OK;
}

/* One run at a time in a directory: a second one training there (the same command
 * typed in two terminals) would interleave its metrics and checkpoints with the
 * first's. The lock is the kernel's, on the directory itself, so a run that dies
 * leaves none behind; a file system without locks runs unlocked, as before. */
static int lock_dir(tr_run_state *st, ag_error *err)
{
    st->dir_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dir_fd < 0)
        return ag_errorf(err, (ag_loc){0}, "%s: cannot open the run directory: %s", st->dir, strerror(errno));
    if (flock(st->dir_fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) return AG_OK;
    return ag_errorf(err, (ag_loc){0},
                     "%s: another aigc-run is training in this directory; wait for it to end, or give --out "
                     "another one",
                     st->dir);
}

/* The run proper: its directory and metrics file, then the epochs, with SIGINT and
 * SIGTERM saving a checkpoint before they stop it. */
static int run_in_dir(tr_run_state *st, ag_error *err)
{
    const tr_options *o = st->o;
    int rc = mkdirs(st->dir, err);
    if (rc == AG_OK) rc = lock_dir(st, err);
    if (rc == AG_OK && o->resume) rc = resume_metrics(st, err);
    if (rc == AG_OK) {
        char prev[4200];
        snprintf(prev, sizeof prev, "%s/last.state", st->dir);
        int replacing = !o->resume && access(prev, F_OK) == 0;
        st->mf = fopen(st->metrics_path, o->resume ? "a" : "w");
        if (!st->mf)
            rc = ag_errorf(err, (ag_loc){0}, "%s: cannot write the metrics: %s", st->metrics_path,
                           strerror(errno));
        /* An earlier run's metrics are gone now, and its weights at the first
         * checkpoint: a run typed again without --resume is easily a mistake. */
        else if (replacing)
            fprintf(stderr, "%s: replacing the run there (--resume would continue it)\n", st->dir);
    }
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    tr_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (rc == AG_OK) {
        rc = run_epochs(st, err);
        if (rc && st->hook_failed) {
            /* A broken hook loses no training: the run so far is saved first. */
            ag_error e2;
            if (checkpoint(st, &e2) == AG_OK)
                ag_error_addf(err, "\n(the run so far is saved in %s/last)", st->dir);
        }
    }
    if (st->mf && fclose(st->mf) && rc == AG_OK)
        rc = ag_errorf(err, (ag_loc){0}, "%s: cannot write the metrics: %s", st->metrics_path, strerror(errno));
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (st->dir_fd >= 0) close(st->dir_fd);
    return rc;
}

int tr_run(pg_program *p, const tr_data *d, const tr_options *o, ag_error *err)
{
    const sp_spec *s = p->spec;
    tr_run_state *st = ag_xcalloc(1, sizeof *st);
    st->p = p;
    st->d = d;
    st->o = o;
    st->dir_fd = -1;
    if (o->out_dir)
        snprintf(st->dir, sizeof st->dir, "%s", o->out_dir);
    else
        snprintf(st->dir, sizeof st->dir, "runs/%s", s->name);
    snprintf(st->metrics_path, sizeof st->metrics_path, "%s/metrics.jsonl", st->dir);
    data_record(d, st->data_meta, sizeof st->data_meta, st->vocab_meta);
    st->pr = (tr_progress){.live = o->progress < 0 ? isatty(2) : o->progress, .start = now()};

    const idx_dataset *tr = &d->train;
    st->order = ag_xmalloc((size_t)tr->count * sizeof *st->order);
    st->logged = ag_xmalloc((size_t)(p->nlogs ? p->nlogs : 1) * sizeof *st->logged);
    for (int64_t k = 0; k < tr->count; k++) st->order[k] = (int32_t)k;
    /* The data order has its own generator, so that changing the model (and with it
     * the draws of noise) does not change which images come together. */
    rng_seed(&st->data_rng, s->seed ^ 0x5eedda7aull);
    st->cursor = tr->count; /* "epoch 0 is over" */

    /* The hook script loads first: one that does not compile stops the run before the
     * run directory, and an earlier run's metrics there, are touched. */
    int rc = hooks_open(st, err);
    for (int k = 0; k < p->nsamples && rc == AG_OK; k++)
        if (p->samples[k].spec->each_epoch) rc = tr_sample_inputs(p, k, d, err);
    /* Loading the checkpoint touches no file: one that is not there (--resume into a
     * directory that does not exist) leaves no run directory behind. */
    if (rc == AG_OK && o->resume) rc = resume(st, o->resume, err);
    if (rc == AG_OK && !(o->resume && nothing_to_train(st))) rc = run_in_dir(st, err);
    hooks_close(st);
    free(st->order);
    free(st->logged);
    free(st);
    return rc;
}
