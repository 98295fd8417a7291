/* chart.c — curves cut to a few hundred buckets and drawn as SVG. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_impl.h"

void rp_series_add(rp_series *s, double x, double y)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->x = ag_xrealloc(s->x, (size_t)s->cap * sizeof *s->x);
        s->y = ag_xrealloc(s->y, (size_t)s->cap * sizeof *s->y);
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
}

void rp_series_cut(rp_series *s, int buckets)
{
    if (s->n <= 2 * (int64_t)buckets) return;
    int64_t out = 0;
    for (int b = 0; b < buckets; b++) {
        int64_t lo = s->n * b / buckets, hi = s->n * (b + 1) / buckets, imin = -1, imax = -1;
        for (int64_t k = lo; k < hi; k++) {
            if (!isfinite(s->y[k])) continue;
            if (imin < 0 || s->y[k] < s->y[imin]) imin = k;
            if (imax < 0 || s->y[k] > s->y[imax]) imax = k;
        }
        /* A bucket of nothing finite stays a gap in the line. */
        if (imin < 0) imin = imax = lo;
        int64_t first = imin < imax ? imin : imax, second = imin < imax ? imax : imin;
        s->x[out] = s->x[first], s->y[out++] = s->y[first];
        if (second != first) s->x[out] = s->x[second], s->y[out++] = s->y[second];
    }
    s->n = out;
}

/* ----------------------------------------------------------------- axes -- */

enum { W = 720, H = 280, ML = 64, MR = 14, MT = 18, MB = 34 };

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

typedef struct axes {
    double x0, x1, y0, y1;
    int log;
} axes;

static double px(const axes *a, double x) { return ML + (x - a->x0) / (a->x1 - a->x0) * (W - ML - MR); }

static double py(const axes *a, double y)
{
    double t = a->log ? (log10(y) - a->y0) / (a->y1 - a->y0) : (y - a->y0) / (a->y1 - a->y0);
    return H - MB - t * (H - MT - MB);
}

/* A step of 1, 2 or 5 times a power of ten that cuts span into about n pieces. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void axis_text(FILE *f, double x, double y, const char *anchor, double v)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%.4g</text>", x, y, anchor, v);
}

static void draw_axes(FILE *f, const axes *a, const rp_chart *c)
{
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>", ML, MT, W - ML - MR,
            H - MT - MB);
    if (a->log) {
        for (int e = (int)ceil(a->y0); e <= (int)floor(a->y1); e++) {
            double y = py(a, pow(10, e));
            fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", ML, W - MR, y, y);
            axis_text(f, ML - 6, y + 4, "end", pow(10, e));
        }
    } else {
        double st = nice_step(a->y1 - a->y0, 5);
        for (double v = ceil(a->y0 / st) * st; v <= a->y1 + st * 1e-9; v += st) {
            double y = py(a, v);
            fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", ML, W - MR, y, y);
            axis_text(f, ML - 6, y + 4, "end", fabs(v) < st * 1e-9 ? 0 : v);
        }
    }
    double st = nice_step(a->x1 - a->x0, 6);
    for (double v = ceil(a->x0 / st) * st; v <= a->x1 + st * 1e-9; v += st)
        axis_text(f, px(a, v), H - MB + 16, "middle", v);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">step</text>", W - MR, H - 4);
    /* Epochs: a faint line where each ended, numbered where they do not crowd. */
    int every = c->nepochs > 24 ? (c->nepochs + 11) / 12 : 1;
    for (int k = 0; k < c->nepochs; k++) {
        double x = px(a, c->epoch_steps[k]);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"epoch\"/>", x, x, MT, H - MB);
        if ((k + 1) % every == 0 || k == c->nepochs - 1)
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"ep\">%d</text>", x, MT - 5, k + 1);
    }
}

/* -------------------------------------------------------------- curves -- */

static void draw_series(FILE *f, const axes *a, const rp_series *s)
{
    static const char *const cls[] = {[RP_STEP] = "st", [RP_EPOCH_TRAIN] = "tr", [RP_EPOCH_TEST] = "te"};
    const char *color = palette[s->run % (int)AG_COUNTOF(palette)];
    int open = 0;
    for (int64_t k = 0; k < s->n; k++) {
        int drawable = isfinite(s->y[k]) && (!a->log || s->y[k] > 0);
        if (!drawable) {
            if (open) fputs("\"/>", f);
            open = 0;
            continue;
        }
        if (!open) fprintf(f, "<polyline class=\"%s\" stroke=\"%s\" points=\"", cls[s->kind], color);
        fprintf(f, "%s%.1f,%.1f", open ? " " : "", px(a, s->x[k]), py(a, s->y[k]));
        open = 1;
    }
    if (open) fputs("\"/>", f);
    /* The test means are few: each is marked. */
    if (s->kind == RP_EPOCH_TEST && s->n <= 200)
        for (int64_t k = 0; k < s->n; k++)
            if (isfinite(s->y[k]) && (!a->log || s->y[k] > 0))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", px(a, s->x[k]), py(a, s->y[k]),
                        color);
}

static void draw(FILE *f, const rp_chart *c, const axes *a)
{
    fprintf(f, "<svg class=\"%s\" viewBox=\"0 0 %d %d\" role=\"img\">", a->log ? "log" : "lin", W, H);
    draw_axes(f, a, c);
    for (int k = 0; k < c->nseries; k++) draw_series(f, a, c->series[k]);
    fputs("</svg>", f);
}

void rp_chart_svg(FILE *f, const rp_chart *c, const char *const *run_labels)
{
    axes a = {INFINITY, -INFINITY, INFINITY, -INFINITY, 0};
    double pos_lo = INFINITY;
    int nonpositive = 0;
    for (int k = 0; k < c->nseries; k++) {
        const rp_series *s = c->series[k];
        for (int64_t j = 0; j < s->n; j++) {
            a.x0 = fmin(a.x0, s->x[j]), a.x1 = fmax(a.x1, s->x[j]);
            if (!isfinite(s->y[j])) continue;
            a.y0 = fmin(a.y0, s->y[j]), a.y1 = fmax(a.y1, s->y[j]);
            if (s->y[j] > 0) pos_lo = fmin(pos_lo, s->y[j]);
            else nonpositive = 1;
        }
    }
    for (int k = 0; k < c->nepochs; k++) a.x0 = fmin(a.x0, c->epoch_steps[k]), a.x1 = fmax(a.x1, c->epoch_steps[k]);
    if (!(a.x0 <= a.x1)) a.x0 = 0, a.x1 = 1;
    a.x0 = fmin(a.x0, 0);
    if (a.x1 == a.x0) a.x1 = a.x0 + 1;
    if (!(a.y0 <= a.y1)) a.y0 = 0, a.y1 = 1;
    axes lg = a;
    int can_log = isfinite(pos_lo) && a.y1 > 0;
    if (can_log) {
        lg.log = 1;
        lg.y0 = floor(log10(pos_lo));
        lg.y1 = ceil(log10(a.y1));
        if (lg.y1 == lg.y0) lg.y1 += 1;
    }
    double pad = (a.y1 - a.y0) * 0.05;
    if (pad == 0) pad = fabs(a.y0) * 0.05 + 1e-6;
    a.y0 -= pad, a.y1 += pad;
    /* Log where the values are positive and span two decades or more: a loss that falls
     * from 500 to 0.5 reads on it, and flattens on a linear axis. */
    int log_first = can_log && !nonpositive && a.y1 / pos_lo >= 100;
    fputs("<figure class=\"chart\"><figcaption>", f);
    rp_html(f, c->name, strlen(c->name));
    if (can_log)
        fprintf(f, " <label><input type=\"checkbox\"%s> log scale</label>", log_first ? " checked" : "");
    fputs("</figcaption>", f);
    draw(f, c, &a);
    if (can_log) draw(f, c, &lg);
    fputs("<div class=\"legend\">", f);
    for (int k = 0, last = -1; k < c->nseries; k++) {
        int r = c->series[k]->run;
        if (r == last) continue;
        last = r;
        fprintf(f, "<span><i style=\"background:%s\"></i>", palette[r % (int)AG_COUNTOF(palette)]);
        rp_html(f, run_labels[r], strlen(run_labels[r]));
        fputs("</span>", f);
    }
    fputs("</div></figure>\n", f);
}
