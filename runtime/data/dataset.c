/* dataset.c — a spec's data set: IDX images or a text corpus, both splits. */
#include "aigc/dataset.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aigc/pool.h"
#include "aigc/safetensors.h"

/* How a kind of IDX data (images, or features) loads a split. */
typedef int (*split_loader)(const char *dir, const char *split, idx_dataset *out, ag_error *err);

/* Whether any file of the split is there, its items' or its labels, raw or gzip. */
static int split_present(const char *dir, const char *split, idx_file items)
{
    static const char *const endings[] = {"", ".gz"};
    const idx_file files[] = {items, IDX_LABELS};
    char path[4200];
    for (size_t f = 0; f < AG_COUNTOF(files); f++)
        for (size_t e = 0; e < AG_COUNTOF(endings); e++)
            if (idx_split_path(dir, split, files[f], endings[e], path, sizeof path) == AG_OK &&
                access(path, F_OK) == 0)
                return 1;
    return 0;
}

/* The test split, loaded on a thread of its own while the caller inflates the training
 * split: Fashion-MNIST's 10,000 test images take 0.06 s of zlib, hidden behind the
 * training images' 0.3 s. */
typedef struct test_load {
    split_loader load;
    const char *dir;
    idx_dataset *out;
    ag_error err;
    int rc;
} test_load;

static void *load_test(void *arg)
{
    test_load *t = arg;
    t->rc = t->load(t->dir, "t10k", t->out, &t->err);
    return NULL;
}

static int load_idx(const sp_spec *s, ds_data *d, split_loader load, idx_file items, ag_error *err)
{
    ag_error e;
    /* The test split is optional: without it there is no test loss. But a test file
     * that is there and broken is an error, not a quiet lack of test loss. */
    const sp_data *sd = &s->data;
    test_load t = {load, sd->test_path, &d->test, {{0}}, AG_OK};
    pthread_t th;
    /* A test_path of its own must hold the split it is given for. */
    int has_test = strcmp(sd->test_path, sd->path) || split_present(sd->test_path, "t10k", items);
    int threaded = has_test && tp_threads() > 1 && pthread_create(&th, NULL, load_test, &t) == 0;
    int rc = load(s->data.path, "train", &d->train, &e);
    if (threaded)
        pthread_join(th, NULL);
    else if (has_test && rc == AG_OK)
        load_test(&t);
    char hint[4200];
    /* Features come from a model: say which command makes them. */
    const char *make = d->kind == SP_DATA_FEATURES ? " (aigc-run encode SPEC -o DIR writes features)" : "";
    if (rc != AG_OK)
        return ag_errorf(err, s->data.path_loc, "cannot load the training data: %s%s%s", e.msg,
                         ag_relative_hint(s->data.path, hint, sizeof hint), make);
    if (has_test) {
        if (t.rc != AG_OK)
            return ag_errorf(err, sd->test_path_loc, "cannot load the test data: %s%s", t.err.msg,
                             ag_relative_hint(sd->test_path, hint, sizeof hint));
        d->has_test = 1;
        if (d->kind == SP_DATA_FEATURES && d->test.cols != d->train.cols)
            return ag_errorf(err, sd->test_path_loc, "the test split has %d features but the training split %d",
                             d->test.cols, d->train.cols);
        if (d->test.rows != d->train.rows || d->test.cols != d->train.cols)
            return ag_errorf(err, sd->test_path_loc, "the test images are %dx%d but the training images %dx%d",
                             d->test.rows, d->test.cols, d->train.rows, d->train.cols);
        /* Generated training images may lack a class the test split has: the models
         * are built for both splits' classes. */
        if (d->test.classes > d->train.classes) d->train.classes = d->test.classes;
    }
    return AG_OK;
}

static int load_images(const sp_spec *s, ds_data *d, ag_error *err)
{
    return load_idx(s, d, idx_load_split, IDX_IMAGES, err);
}

static int load_features(const sp_spec *s, ds_data *d, ag_error *err)
{
    return load_idx(s, d, idx_load_features, IDX_FEATURES, err);
}

static int load_text(const sp_spec *s, ds_data *d, ag_error *err)
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
static int (*const loaders[])(const sp_spec *, ds_data *, ag_error *) = {
    [SP_DATA_IMAGES] = load_images,
    [SP_DATA_TEXT] = load_text,
    [SP_DATA_FEATURES] = load_features,
};

int ds_load(const sp_spec *s, ds_data *d, ag_error *err)
{
    memset(d, 0, sizeof *d);
    d->kind = s->data.kind;
    AG_ASSERT((size_t)d->kind < AG_COUNTOF(loaders));
    if (loaders[d->kind](s, d, err) == AG_OK) return AG_OK;
    ds_free(d);
    return AG_ERR;
}

void ds_record(const ds_data *d, char *data, size_t n, char *vocab)
{
    snprintf(data, n, "%dx%d %d", d->train.rows, d->train.cols, d->train.classes);
    for (int k = 0; k < d->text.vocab; k++) sprintf(vocab + 2 * k, "%02x", d->text.bytes[k]);
    vocab[2 * d->text.vocab] = 0;
}

int ds_recorded(const sp_spec *s, const char *path, const ag_error *absent, ds_data *d)
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
        ds_free(d);
        return 0;
    }
    d->train.rows = d->test.rows = rows;
    d->train.cols = d->test.cols = cols;
    d->train.classes = d->test.classes = classes;
    d->recorded = 1;
    d->absent = *absent;
    return 1;
}

void ds_free(ds_data *d)
{
    idx_dataset_free(&d->train);
    idx_dataset_free(&d->test);
    tx_free(&d->text);
    memset(d, 0, sizeof *d);
}

void ds_item(const idx_dataset *ds, int64_t item, float *dst)
{
    int64_t px = (int64_t)ds->rows * ds->cols;
    if (ds->images.type == IDX_FLOAT) {
        for (int64_t j = 0; j < px; j++) dst[j] = idx_float(&ds->images, item * px + j);
        return;
    }
    const uint8_t *src = ds->images.data + item * px;
    for (int64_t j = 0; j < px; j++) dst[j] = (float)src[j];
}

typedef struct fill_job {
    ag_node *pixels, *labels;
    const idx_dataset *ds;
    const int32_t *order;
    int64_t at;
} fill_job;

static void fill_images(void *ctx, int64_t lo, int64_t hi)
{
    const fill_job *j = ctx;
    int64_t px = (int64_t)j->ds->rows * j->ds->cols;
    for (int64_t k = lo; k < hi; k++) {
        int64_t item = j->order ? j->order[j->at + k] : j->at + k;
        ds_item(j->ds, item, j->pixels->data + k * px);
        j->labels->data[k] = (float)j->ds->labels.data[item];
    }
}

/* Images a few thousand bytes apart, in shuffled order, read from memory rather than
 * cache: on the pool, the batch's assembly is not a serial stretch of the step. */
enum { FILL_GRAIN = 1 << 14 };

void ds_fill_batch(ag_node *pixels, ag_node *labels, const idx_dataset *ds, const int32_t *order, int64_t at,
                   int n)
{
    fill_job j = {pixels, labels, ds, order, at};
    tp_for_items(n, tp_items_holding(FILL_GRAIN, (int64_t)ds->rows * ds->cols), fill_images, &j);
}
