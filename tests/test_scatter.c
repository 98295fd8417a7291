/*
 * test_scatter.c — the principal components against a case worked by hand, features of
 * one and two values drawn as they are, and the scatter's PNG: its size, a point's
 * colour where its coordinates put it, the legend's colours.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/png.h"
#include "aigc/scatter.h"
#include "tap.h"
#include "tmpdir.h"

static int near(double a, double b) { return fabs(a - b) <= 1e-5 + 1e-5 * fabs(b); }

/* Four points about m = (1, 2, 3): m ± 2u and m ± v, u = (3, 4, 0) / 5, v = (0, 0, 1).
 * Centred, they are ±2u and ±v; the covariance (over n - 1 = 3) is 8/3 u u^T + 2/3 v v^T,
 * so the first component is u (variance 8/3, 0.8 of the total 10/3), the second v
 * (0.2), and the points' coordinates are (2, 0), (-2, 0), (0, 1), (0, -1). u's largest
 * component (4/5) and v's are positive, as sc_project signs them. */
static void test_pca_by_hand(void)
{
    const float x[4][3] = {
        {1 + 1.2f, 2 + 1.6f, 3},
        {1 - 1.2f, 2 - 1.6f, 3},
        {1, 2, 4},
        {1, 2, 2},
    };
    const float want[4][2] = {{2, 0}, {-2, 0}, {0, 1}, {0, -1}};
    float xy[8];
    double share[2];
    ag_error err = {{0}};
    int rc = sc_project(&x[0][0], 4, 3, xy, share, &err);
    int same = rc == AG_OK;
    for (int i = 0; i < 4 && same; i++) same = near(xy[2 * i], want[i][0]) && near(xy[2 * i + 1], want[i][1]);
    ok(same, "pca: the points' coordinates along u and v, (2, 0), (-2, 0), (0, 1), (0, -1)");
    if (!same)
        for (int i = 0; i < 4; i++) diag("point %d: (%g, %g)", i, xy[2 * i], xy[2 * i + 1]);
    ok(rc == AG_OK && near(share[0], 0.8) && near(share[1], 0.2), "pca: the variance shares 0.8 and 0.2 (got %g, %g)",
       share[0], share[1]);
}

static void test_few_features(void)
{
    const float two[3][2] = {{1, -1}, {3, 5}, {2, 2}}, one[3] = {4, -4, 0};
    float xy[6];
    double share[2];
    ag_error err;
    ok(sc_project(&two[0][0], 3, 2, xy, share, &err) == AG_OK && !memcmp(xy, two, sizeof two),
       "two features: drawn as they are");
    ok(sc_project(one, 3, 1, xy, share, &err) == AG_OK && xy[0] == 4 && xy[1] == 0 && xy[2] == -4 && xy[5] == 0 &&
           share[0] == 1 && share[1] == 0,
       "one feature: against 0");
}

/* Two points at the corners of the plot: the image is 12 + 480 + 12 wide plus the 72 of
 * the legend, and as tall as the plot (or the legend, when it is taller). */
static void test_png(void)
{
    const float xy[2][2] = {{0, 0}, {1, 1}};
    const uint8_t labels[2] = {0, 3};
    ag_error err = {{0}};
    img_gray g;
    int rc = sc_write(in_tmp("s.png"), &xy[0][0], labels, 2, 4, &err);
    ok(rc == AG_OK && img_read_gray(in_tmp("s.png"), &g, &err) == AG_OK && g.w == 576 && g.h == 504,
       "png: 576x504 for a plot and a legend of 4 classes");
    if (rc) diag("%s", err.msg);
    /* The point of class 0 is a 3x3 dot at the plot's bottom left, in from the frame by
     * the 3% margin of the range; its colour (read as gray) is that of the legend's
     * first square, and the square of class 3 is another. */
    int x = 12 + (int)(0.03 / 1.06 * 477), y = 12 + 480 - 3 - (int)(0.03 / 1.06 * 477);
    int v = g.pixels ? g.pixels[(size_t)(y + 1) * g.w + x + 1] : -1;
    int l0 = g.pixels ? g.pixels[(size_t)(12 + 5) * g.w + 12 + 480 + 12 + 6 + 5] : -2;
    int l3 = g.pixels ? g.pixels[(size_t)(12 + 3 * 16 + 5) * g.w + 12 + 480 + 12 + 6 + 5] : -2;
    ok(v == l0 && v < 200, "png: the first point in class 0's colour at its place (gray %d, legend's %d)", v, l0);
    ok(l3 < 200 && l3 != l0, "png: the legend's square of class 3 is coloured, another colour (gray %d)", l3);
    img_gray_free(&g);
    rc = sc_write(in_tmp("tall.png"), &xy[0][0], labels, 2, 40, &err);
    if (rc == AG_OK) rc = img_read_gray(in_tmp("tall.png"), &g, &err);
    ok(rc == AG_OK && g.h == 24 + 40 * 16, "png: a legend of 40 classes makes it taller (%d rows)", g.h);
    img_gray_free(&g);
}

int main(void)
{
    tmp_open("scatter");
    test_pca_by_hand();
    test_few_features();
    test_png();
    tmp_close();
    return tap_done();
}
