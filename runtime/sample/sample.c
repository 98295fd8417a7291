/* sample.c — sample sections: their inputs, their draws, their grids and texts. */
#include "aigc/sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aigc/afile.h"
#include "aigc/idx.h"
#include "aigc/png.h"

/* A text input's bytes as token ids, the same row for every draw. */
static int text_input(pg_program *p, int k, int j, const ds_data *d, ag_error *err)
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

int sa_inputs(pg_program *p, int k, const ds_data *d, ag_error *err)
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

int sa_draw(pg_program *p, int k, const ds_data *d, int64_t first, uint64_t seed, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    if (sa_inputs(p, k, d, err)) return AG_ERR;
    /* test_x: the test split's images from first on, wrapping around its end. */
    if (d->has_test) {
        int64_t px = (int64_t)p->rows * p->cols, at = first % d->test.count;
        for (int j = 0; j < q->count; j++, at = (at + 1) % d->test.count) {
            ds_item(&d->test, at, q->pixels->data + j * px);
            q->labels->data[j] = d->test.labels.data[at];
        }
    }
    return pg_sample(p, k, seed, err);
}

/* The first n texts of a text section, decoded: to stdout for "-", else to a file
 * replaced whole (af_). */
static int write_text(pg_program *p, int k, const ds_data *d, const float *ids, const char *path, int n,
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

/* The values mapped to black and white: the section's range, else the least and
 * the largest finite values of the n in x. */
static void value_range(const pg_sampler *q, const float *x, int64_t n, float *lo, float *hi)
{
    *lo = q->lo, *hi = q->hi;
    if (*lo < *hi) return;
    *lo = INFINITY, *hi = -INFINITY;
    for (int64_t j = 0; j < n; j++)
        if (isfinite(x[j])) *lo = fminf(*lo, x[j]), *hi = fmaxf(*hi, x[j]);
    if (!(*lo < *hi)) *lo = 0, *hi = 1;
}

int sa_bytes(const pg_program *p, int k, int64_t n, int64_t first, uint8_t *pixels, uint8_t *labels, ag_error *err)
{
    const pg_sampler *q = &p->samples[k];
    AG_ASSERT(!q->text && q->channels == 1 && n <= q->images && (!labels || q->label));
    int64_t px = (int64_t)p->rows * p->cols;
    float lo, hi;
    value_range(q, q->image->data, (int64_t)q->images * px, &lo, &hi);
    if (pixels) img_to_bytes(q->image->data, n * px, lo, hi, pixels);
    for (int64_t j = 0; labels && j < n; j++) {
        float v = q->label->data[j];
        if (!(v >= 0 && v <= p->classes - 1 && v == floorf(v)))
            return ag_errorf(err, q->spec->label->loc, "%s: 'label' gives %g for image %lld, not a class of the "
                             "data's: a whole number from 0 to %d", q->spec->name, v, (long long)(first + j),
                             p->classes - 1);
        labels[j] = (uint8_t)v;
    }
    return AG_OK;
}

/* A limit above the count, which hooks may ask for (aigc.sample{n = ...}), is drawn in
 * rounds because the section's graph is planned for its count; the rounds follow
 * eval --quality's draws. The first round runs last, so that a trajectory strip is that
 * of the grid's first image, as it is without rounds. */
int sa_write(pg_program *p, int k, const ds_data *d, const char *path, uint64_t seed, int limit, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    int images = limit > 0 ? limit : q->images, rounds = (images + q->images - 1) / q->images;
    int64_t per = ag_numel(&q->image->shape) / q->images;
    float *buf = rounds > 1 ? ag_xmalloc((size_t)(images * per) * sizeof *buf) : NULL;
    for (int r = rounds - 1; r >= 0; r--) {
        if (sa_draw(p, k, d, (int64_t)r * q->images, seed + (uint64_t)r, err)) {
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
    float lo, hi;
    value_range(q, x, per * images, &lo, &hi);
    rc = img_write_grid(path, x, images, p->rows, p->cols, q->channels, rows, cols, lo, hi, 2, err);
    free(buf);
    if (rc || !q->strip) return rc;
    char strip[4200];
    if (sa_strip_path(path, strip, sizeof strip))
        return ag_errorf(err, (ag_loc){0}, "%s: the path is too long", path);
    return img_write_grid(strip, q->strip, q->strip_frames, p->rows, p->cols, q->channels, 1,
                          q->strip_frames, lo, hi, 2, err);
}

int sa_idx_path(const char *dir, int labels, char *buf, size_t n)
{
    return idx_split_path(dir, "train", labels ? IDX_LABELS : IDX_IMAGES, "", buf, n);
}

/* The rounds of sa_write_idx into open writers (wl NULL without labels). */
static int draw_idx(pg_program *p, int k, const ds_data *d, uint64_t seed, int64_t n, idx_writer *wi,
                    idx_writer *wl, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    int64_t px = (int64_t)p->rows * p->cols;
    uint8_t *pixels = ag_xmalloc((size_t)(q->images * px)), *labels = ag_xmalloc((size_t)q->images);
    int rc = AG_OK;
    for (int64_t done = 0, round = 0; done < n && rc == AG_OK; round++) {
        int64_t m = n - done < q->images ? n - done : q->images;
        rc = sa_draw(p, k, d, done, seed + (uint64_t)round, err);
        if (rc == AG_OK) rc = sa_bytes(p, k, m, done, pixels, wl ? labels : NULL, err);
        if (rc == AG_OK) rc = idx_write_items(wi, pixels, m, err);
        if (rc == AG_OK && wl) rc = idx_write_items(wl, labels, m, err);
        done += m;
    }
    free(pixels);
    free(labels);
    return rc;
}

/* Images without labels: labels left in the directory by an earlier draw would be
 * read with them as their classes (or refused for their count), so they go. */
static int drop_labels(const char *lpath, ag_error *err)
{
    static const char *const endings[] = {"", ".gz"};
    for (size_t k = 0; k < AG_COUNTOF(endings); k++) {
        char path[4210];
        snprintf(path, sizeof path, "%s%s", lpath, endings[k]);
        if (unlink(path) != 0 && errno != ENOENT)
            return ag_errorf(err, (ag_loc){0}, "%s: cannot remove the labels of an earlier draw: %s", path,
                             strerror(errno));
    }
    return AG_OK;
}

int sa_write_idx(pg_program *p, int k, const ds_data *d, const char *dir, uint64_t seed, int64_t n, ag_error *err)
{
    pg_sampler *q = &p->samples[k];
    AG_ASSERT(!q->text && q->channels == 1 && n >= 1);
    char ipath[4200], lpath[4200];
    if (sa_idx_path(dir, 0, ipath, sizeof ipath) || sa_idx_path(dir, 1, lpath, sizeof lpath))
        return ag_errorf(err, (ag_loc){0}, "%s: the path is too long", dir);
    if (ag_mkdirs_or_error(dir, "the directory", err)) return AG_ERR;
    idx_writer wi, wl;
    int64_t idims[] = {n, p->rows, p->cols}, ldims[] = {n};
    if (idx_write_begin(&wi, ipath, IDX_UBYTE, 3, idims, err)) return AG_ERR;
    if (q->label && idx_write_begin(&wl, lpath, IDX_UBYTE, 1, ldims, err)) {
        idx_write_abort(&wi);
        return AG_ERR;
    }
    if (draw_idx(p, k, d, seed, n, &wi, q->label ? &wl : NULL, err)) {
        idx_write_abort(&wi);
        if (q->label) idx_write_abort(&wl);
        return AG_ERR;
    }
    if (idx_write_end(&wi, err)) {
        if (q->label) idx_write_abort(&wl);
        return AG_ERR;
    }
    return q->label ? idx_write_end(&wl, err) : drop_labels(lpath, err);
}

int sa_strip_path(const char *grid, char *buf, size_t n)
{
    size_t len = strlen(grid);
    if (len >= 4 && !strcmp(grid + len - 4, ".png")) len -= 4;
    return snprintf(buf, n, "%.*s-strip.png", (int)len, grid) >= (int)n ? AG_ERR : AG_OK;
}
