/* scatter.c — principal components of features, and their scatter plot as a PNG. */
#include "aigc/scatter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/png.h"
#include "aigc/quality.h"

/* ------------------------------------------------------------------ PCA -- */

int sc_project(const float *x, int64_t n, int f, float *xy, double share[2], ag_error *err)
{
    AG_ASSERT(n >= 1 && f >= 1 && n <= INT32_MAX);
    if (f <= 2) {
        for (int64_t r = 0; r < n; r++) {
            xy[2 * r] = x[r * f];
            xy[2 * r + 1] = f == 2 ? x[r * f + 1] : 0.0f;
        }
        double v[2] = {0, 0}, m[2] = {0, 0};
        for (int64_t r = 0; r < n; r++)
            for (int j = 0; j < 2; j++) m[j] += xy[2 * r + j] / (double)n;
        for (int64_t r = 0; r < n; r++)
            for (int j = 0; j < 2; j++) v[j] += (xy[2 * r + j] - m[j]) * (xy[2 * r + j] - m[j]);
        double total = v[0] + v[1] > 0 ? v[0] + v[1] : 1;
        share[0] = f == 1 ? 1 : v[0] / total;
        share[1] = f == 1 ? 0 : v[1] / total;
        return AG_OK;
    }
    /* The features' statistics and eigenvectors as the Fréchet distance takes them. */
    qm_stats st;
    qm_stats_init(&st, f);
    qm_stats_add(&st, x, n);
    double *a = ag_xmalloc((size_t)f * f * sizeof *a), *w = ag_xmalloc((size_t)f * sizeof *w);
    qm_stats_cov(&st, a);
    const double *mean = st.mean;
    ag_error e;
    int rc = qm_eig_sym(f, a, w, 1, &e);
    if (rc) ag_errorf(err, (ag_loc){0}, "the principal components: %s", e.msg);
    if (rc == AG_OK) {
        /* Ascending eigenvalues; a's row j (LAPACK's column j) is eigenvector j. */
        double total = 0;
        for (int j = 0; j < f; j++) total += fmax(w[j], 0.0);
        for (int c = 0; c < 2; c++) {
            double *v = a + (size_t)(f - 1 - c) * f;
            int big = 0;
            for (int j = 1; j < f; j++)
                if (fabs(v[j]) > fabs(v[big])) big = j;
            if (v[big] < 0)
                for (int j = 0; j < f; j++) v[j] = -v[j];
            share[c] = total > 0 ? fmax(w[f - 1 - c], 0.0) / total : 0;
            for (int64_t r = 0; r < n; r++) {
                double s = 0;
                for (int j = 0; j < f; j++) s += (x[r * f + j] - mean[j]) * v[j];
                xy[2 * r + c] = (float)s;
            }
        }
    }
    free(a);
    free(w);
    qm_stats_free(&st);
    return rc;
}

/* -------------------------------------------------------------- drawing -- */

enum { PLOT = 480, MARGIN = 12, DOT = 3, ROW = 16, LEGEND = 72, SCALE = 2 };

/* Digits 0-9, 3x5 pixels, a row's 3 bits left to right, for the legend's class numbers. */
static const uint8_t digits[10][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
};

/* matplotlib's ten category colours, then hues a golden angle apart. */
static void colour_impl(int k, uint8_t rgb[3])
{
    static const uint32_t tab10[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                     0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    if (k < (int)AG_COUNTOF(tab10)) {
        for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)(tab10[k] >> (16 - 8 * c));
        return;
    }
    double h = fmod(k * 0.618033988749895, 1.0) * 6, s = 0.7, v = 0.85;
    int i = (int)h;
    double fr = h - i, p = v * (1 - s), q = v * (1 - s * fr), t = v * (1 - s * (1 - fr));
    double rgbd[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lround(255 * rgbd[i % 6][c]);
}

typedef struct canvas {
    uint8_t *px;
    int w, h;
} canvas;

static void fill_impl(canvas *cv, int x0, int y0, int w, int h, const uint8_t rgb[3])
{
    for (int y = y0 < 0 ? 0 : y0; y < y0 + h && y < cv->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x0 + w && x < cv->w; x++) memcpy(cv->px + 3 * ((size_t)y * cv->w + x), rgb, 3);
}

static void number_impl(canvas *cv, int x0, int y0, int value, const uint8_t rgb[3])
{
    char text[16];
    int len = snprintf(text, sizeof text, "%d", value);
    for (int i = 0; i < len; i++)
        for (int r = 0; r < 5; r++)
            for (int c = 0; c < 3; c++)
                if (digits[text[i] - '0'][r] >> (2 - c) & 1)
                    fill_impl(cv, x0 + i * 4 * SCALE + c * SCALE, y0 + r * SCALE, SCALE, SCALE, rgb);
}

/* The finite range of coordinate c, widened by a margin (or to a unit around a lone
 * value). */
static void bounds_impl(const float *xy, int64_t n, int c, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int64_t r = 0; r < n; r++)
        if (isfinite(xy[2 * r + c])) *lo = fmin(*lo, xy[2 * r + c]), *hi = fmax(*hi, xy[2 * r + c]);
    if (!(*lo < *hi)) {
        double mid = isfinite(*lo) ? *lo : 0;
        *lo = mid - 1, *hi = mid + 1;
    }
    double pad = 0.03 * (*hi - *lo);
    *lo -= pad, *hi += pad;
}

int sc_write(const char *path, const float *xy, const uint8_t *labels, int64_t n, int classes, ag_error *err)
{
    AG_ASSERT(classes >= 1 && classes <= 256);
    static const uint8_t white[3] = {255, 255, 255}, frame[3] = {170, 170, 170}, ink[3] = {40, 40, 40};
    int legend_h = 2 * MARGIN + classes * ROW;
    canvas cv = {.w = PLOT + 2 * MARGIN + LEGEND, .h = PLOT + 2 * MARGIN > legend_h ? PLOT + 2 * MARGIN : legend_h};
    cv.px = ag_xmalloc((size_t)cv.w * cv.h * 3);
    fill_impl(&cv, 0, 0, cv.w, cv.h, white);
    fill_impl(&cv, MARGIN - 1, MARGIN - 1, PLOT + 2, PLOT + 2, frame);
    fill_impl(&cv, MARGIN, MARGIN, PLOT, PLOT, white);
    double lo[2], hi[2];
    for (int c = 0; c < 2; c++) bounds_impl(xy, n, c, &lo[c], &hi[c]);
    for (int64_t r = 0; r < n; r++) {
        if (!isfinite(xy[2 * r]) || !isfinite(xy[2 * r + 1])) continue;
        /* y grows upwards, as on a chart. */
        int x = MARGIN + (int)((xy[2 * r] - lo[0]) / (hi[0] - lo[0]) * (PLOT - DOT));
        int y = MARGIN + PLOT - DOT - (int)((xy[2 * r + 1] - lo[1]) / (hi[1] - lo[1]) * (PLOT - DOT));
        uint8_t rgb[3];
        AG_ASSERT(labels[r] < classes);
        colour_impl(labels[r], rgb);
        fill_impl(&cv, x, y, DOT, DOT, rgb);
    }
    for (int k = 0; k < classes; k++) {
        uint8_t rgb[3];
        colour_impl(k, rgb);
        int x = PLOT + 2 * MARGIN + 6, y = MARGIN + k * ROW;
        fill_impl(&cv, x, y, 10, 10, rgb);
        number_impl(&cv, x + 16, y, k, ink);
    }
    int rc = img_write_rgb(path, cv.px, cv.w, cv.h, err);
    free(cv.px);
    return rc;
}
