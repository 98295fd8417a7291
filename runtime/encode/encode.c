/* encode.c — a features section over both splits, as float IDX files and a scatter. */
#include "aigc/encode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/idx.h"
#include "aigc/sample.h"
#include "aigc/scatter.h"

/* The section over every item of ds into x [count, F]. The section's graph is planned
 * for its count: the last chunk is filled up with the split's first items, whose rows
 * are dropped (a row's features depend on its own image only: evaluation runs without
 * dropout, batch_norm with its running statistics). */
static int encode_split(pg_program *p, int k, const idx_dataset *ds, uint64_t seed, float *x, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    int64_t px = (int64_t)p->rows * p->cols, f = q->image->shape.d[1];
    for (int64_t at = 0, chunk = 0; at < ds->count; at += q->count, chunk++) {
        for (int j = 0; j < q->count; j++) {
            int64_t item = (at + j) % ds->count;
            ds_item(ds, item, q->pixels->data + j * px);
            q->labels->data[j] = ds->labels.data[item];
        }
        if (pg_sample(p, k, seed + (uint64_t)chunk, err)) return AG_ERR;
        int64_t rows = ds->count - at < q->count ? ds->count - at : q->count;
        for (int64_t r = 0; r < rows * f; r++)
            if (!isfinite(q->image->data[r]))
                return ag_errorf(err, q->spec->features->loc, "%s: 'features' gives %g for item %lld of the split "
                                 "(feature %lld): the model has diverged, or the expression divides by 0",
                                 q->spec->name, q->image->data[r], (long long)(at + r / f), (long long)(r % f));
        memcpy(x + at * f, q->image->data, (size_t)(rows * f) * sizeof *x);
    }
    return AG_OK;
}

/* DIR/NAME into the next entry of the list of files, which counts it once it is
 * written. */
static const char *file_path(en_result *r, const char *dir, const char *name)
{
    char *buf = r->files[r->nfiles];
    snprintf(buf, sizeof r->files[0], "%s/%s", dir, name);
    return buf;
}

/* The features and labels of one split, as IDX files (en_write checked that DIR leaves
 * room for their names). */
static int write_split(en_result *r, const char *dir, const char *split, const idx_dataset *ds, const float *x,
                       int f, ag_error *err)
{
    int64_t dims[2] = {ds->count, f};
    char *path = r->files[r->nfiles];
    idx_split_path(dir, split, IDX_FEATURES, "", path, sizeof r->files[0]);
    if (idx_write(path, IDX_FLOAT, 2, dims, x, err)) return AG_ERR;
    path = r->files[++r->nfiles];
    idx_split_path(dir, split, IDX_LABELS, "", path, sizeof r->files[0]);
    if (idx_write(path, IDX_UBYTE, 1, dims, ds->labels.data, err)) return AG_ERR;
    r->nfiles++;
    return AG_OK;
}

int en_write(pg_program *p, int k, const ds_data *d, const char *dir, uint64_t seed, en_result *r, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    AG_ASSERT(q->features && !d->recorded);
    memset(r, 0, sizeof *r);
    int f = (int)q->image->shape.d[1];
    if (d->kind == SP_DATA_TEXT)
        return ag_errorf(err, q->spec->loc, "%s: aigc-run encode writes features with the images' labels; "
                         "text data has no labels", q->spec->name);
    if (f > EN_MAX_FEATURES)
        return ag_errorf(err, q->spec->features->loc, "%s: 'features' gives %d values per image; at most %d "
                         "(the scatter's principal components)", q->spec->name, f, EN_MAX_FEATURES);
    if (strlen(dir) > sizeof r->files[0] - 64) return ag_errorf(err, (ag_loc){0}, "%s: the path is too long", dir);
    if (ag_mkdirs_or_error(dir, "the directory", err)) return AG_ERR;
    if (sa_inputs(p, k, d, err)) return AG_ERR;
    r->features = f;
    float *train = ag_xmalloc((size_t)(d->train.count * f) * sizeof *train);
    float *test = d->has_test ? ag_xmalloc((size_t)(d->test.count * f) * sizeof *test) : NULL;
    int rc = encode_split(p, k, &d->train, seed, train, err);
    if (rc == AG_OK) rc = write_split(r, dir, "train", &d->train, train, f, err);
    r->train = d->train.count;
    if (rc == AG_OK && test) {
        rc = encode_split(p, k, &d->test, seed, test, err);
        if (rc == AG_OK) rc = write_split(r, dir, "t10k", &d->test, test, f, err);
        r->test = d->test.count;
    }
    /* The scatter shows the test split, or the training split when there is none. */
    const idx_dataset *shown = test ? &d->test : &d->train;
    float *xy = rc == AG_OK ? ag_xmalloc((size_t)(2 * shown->count) * sizeof *xy) : NULL;
    if (rc == AG_OK) rc = sc_project(test ? test : train, shown->count, f, xy, r->share, err);
    int classes = d->train.classes > shown->classes ? d->train.classes : shown->classes;
    if (rc == AG_OK) rc = sc_write(file_path(r, dir, "scatter.png"), xy, shown->labels.data, shown->count, classes, err);
    if (rc == AG_OK) r->nfiles++;
    free(xy);
    free(train);
    free(test);
    return rc;
}
