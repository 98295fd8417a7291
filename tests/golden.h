/*
 * golden.h — reads the golden files that scripts/golden/make_goldens.py writes from
 * PyTorch (prefix gd_), and compares our tensors with them.
 *
 * Format: '#' starts a comment line; an entry is a header line "name ndim d0 ...",
 * then prod(d) numbers (1 when ndim is 0), whitespace separated, on any lines.
 *
 *     gd_file f;
 *     if (gd_load(&f, "tests/golden/loss.txt")) return tap_done();   // a failed check
 *     const gd_entry *e = gd_get(&f, "bce.mean");                     // NULL: a failed check
 *     gd_check(got, n, e, 1e-6, 1e-5, "bce mean");
 *     gd_free(&f);
 */
#ifndef AIGC_GOLDEN_H
#define AIGC_GOLDEN_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/base.h"
#include "tap.h"

typedef struct gd_entry {
    char name[96];
    int ndim, d[8];
    long n;                 /* prod(d) */
    double *v;
} gd_entry;

typedef struct gd_file {
    const char *path;
    int n;
    gd_entry *e;
} gd_file;

static inline void gd_free(gd_file *f)
{
    for (int k = 0; k < f->n; k++) free(f->e[k].v);
    free(f->e);
    f->n = 0;
    f->e = NULL;
}

/* Reads the next whitespace-separated token, skipping comment lines. 0 at the end. */
static inline int gd_token(FILE *fp, char *buf, size_t len)
{
    int c;
    for (;;) {
        c = fgetc(fp);
        if (c == '#') {
            while (c != '\n' && c != EOF) c = fgetc(fp);
        }
        if (c == EOF) return 0;
        if (c != ' ' && c != '\n' && c != '\t' && c != '\r') break;
    }
    size_t k = 0;
    while (c != EOF && c != ' ' && c != '\n' && c != '\t' && c != '\r') {
        if (k + 1 < len) buf[k++] = (char)c;
        c = fgetc(fp);
    }
    buf[k] = 0;
    return 1;
}

static inline int gd_number(FILE *fp, double *out)
{
    char buf[64], *end;
    if (!gd_token(fp, buf, sizeof buf)) return 0;
    errno = 0;
    *out = strtod(buf, &end);
    return *end == 0 && end != buf;
}

/* 0 on success; otherwise a failed TAP check saying why. */
static inline int gd_load(gd_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        ok(0, "open %s: %s", path, strerror(errno));
        return -1;
    }
    char name[96];
    int cap = 0;
    while (gd_token(fp, name, sizeof name)) {
        if (f->n == cap) {
            cap = cap ? 2 * cap : 32;
            f->e = ag_xrealloc(f->e, (size_t)cap * sizeof *f->e);
        }
        gd_entry *e = &f->e[f->n];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
        double x = -1;
        int good = gd_number(fp, &x) && x >= 0 && x <= 8;
        e->ndim = (int)x;
        e->n = 1;
        for (int k = 0; good && k < e->ndim; k++) {
            good = gd_number(fp, &x) && x >= 0;
            e->d[k] = (int)x;
            e->n *= e->d[k];
        }
        e->v = good ? ag_xmalloc((size_t)e->n * sizeof *e->v + 1) : NULL;
        for (long k = 0; good && k < e->n; k++) good = gd_number(fp, &e->v[k]);
        f->n++;
        if (!good) {
            ok(0, "%s: entry %s is malformed or truncated", path, name);
            fclose(fp);
            gd_free(f);
            return -1;
        }
    }
    fclose(fp);
    return 0;
}

/* NULL, with a failed check, when the file has no such entry. */
static inline const gd_entry *gd_get(const gd_file *f, const char *name)
{
    for (int k = 0; k < f->n; k++)
        if (strcmp(f->e[k].name, name) == 0) return &f->e[k];
    ok(0, "%s has an entry %s", f->path, name);
    return NULL;
}

/* NULL without a check: for entries that only some cases have. */
static inline const gd_entry *gd_find(const gd_file *f, const char *name)
{
    for (int k = 0; k < f->n; k++)
        if (strcmp(f->e[k].name, name) == 0) return &f->e[k];
    return NULL;
}

static inline void gd_to_float(const gd_entry *e, float *out)
{
    for (long k = 0; k < e->n; k++) out[k] = (float)e->v[k];
}

/* One check: n values of got against e, element by element, |a - b| <= atol + rtol |b|.
 * On failure, the first mismatch and the count. */
__attribute__((format(printf, 6, 7))) static inline int gd_check(const float *got, long n,
                                                          const gd_entry *e, double atol,
                                                          double rtol, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!e) return 0;
    if (n != e->n) return ok(0, "%s: %ld values, golden %s has %ld", what, n, e->name, e->n);
    long bad = 0, first = -1;
    double worst = 0;
    for (long k = 0; k < n; k++) {
        double err = fabs((double)got[k] - e->v[k]);
        if (err > worst && !isinf(e->v[k])) worst = err;
        if (!tap_close(got[k], e->v[k], atol, rtol)) {
            if (first < 0) first = k;
            bad++;
        }
    }
    int c = ok(bad == 0, "%s matches PyTorch (%ld values, worst abs error %.2g)", what, n,
               worst);
    if (!c)
        diag("%ld mismatches; first at %ld: got %.9g, want %.9g", bad, first,
             (double)got[first], e->v[first]);
    return c;
}

#endif
