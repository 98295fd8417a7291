/* test_golden_init.c — our initializers draw from PyTorch's distributions.
 *
 * Our values come from our generator, so the test compares statistics with the
 * distributions that tests/golden/init.txt states for PyTorch: every value inside the
 * float bounds exactly, a uniform's extremes near its bounds, and the sample mean and
 * standard deviation within 5 standard errors. For n draws of std s the standard error
 * of the mean is s / sqrt(n); that of the sample std is s sqrt((kurtosis - 1) / 4n),
 * at most 0.71 s / sqrt(n) for a normal (kurtosis 3; a uniform's is 1.8). The n draws
 * of a uniform on [lo, hi) leave a gap of about (hi - lo) / n at each end; more than 20
 * times that has probability e^-20. */
#include <math.h>
#include <stdlib.h>

#include "aigc/init.h"
#include "golden.h"
#include "tap.h"

/* Checks one sample against [lo, hi, mean, std]. */
static void check_stats(const char *label, const float *x, long n, const double *st)
{
    float lo = (float)st[0], hi = (float)st[1];
    double mean = st[2], std = st[3];
    double sum = 0, sq = 0, mn = INFINITY, mx = -INFINITY;
    long outside = 0;
    for (long k = 0; k < n; k++) {
        if (!(x[k] >= lo && x[k] <= hi)) outside++;
        sum += x[k];
        if (x[k] < mn) mn = x[k];
        if (x[k] > mx) mx = x[k];
    }
    double m = sum / n;
    for (long k = 0; k < n; k++) sq += (x[k] - m) * (x[k] - m);
    double s = sqrt(sq / (n - 1));
    ok(outside == 0, "%s: all %ld values in [%.9g, %.9g] (%ld outside)", label, n, lo, hi,
       outside);
    if (std == 0) {
        ok(mn == mean && mx == mean, "%s: every value is %g", label, mean);
        return;
    }
    is_close(m, mean, 5 * std / sqrt(n), 0, "%s: mean %.6g, PyTorch's %.6g", label, m, mean);
    is_close(s, std, 5 * 0.71 * std / sqrt(n), 0, "%s: std %.6g, PyTorch's %.6g", label, s,
             std);
    if (isfinite(st[1])) {
        double gap = 20 * (st[1] - st[0]) / n;
        ok(mx >= hi - gap && mn <= lo + gap, "%s: extremes %.6g, %.6g reach the bounds",
           label, mn, mx);
    }
}

static void test_linear(const gd_file *f, rng *r, const char *label)
{
    char name[128];
    snprintf(name, sizeof name, "%s.shape", label);
    const gd_entry *shape = gd_get(f, name);
    snprintf(name, sizeof name, "%s.weight", label);
    const gd_entry *ws = gd_get(f, name);
    snprintf(name, sizeof name, "%s.bias", label);
    const gd_entry *bs = gd_get(f, name);
    if (!shape || !ws || !bs) return;
    int out = (int)shape->v[0], in = (int)shape->v[1];
    float *w = ag_xmalloc((size_t)out * in * sizeof *w), *b = ag_xmalloc((size_t)out * sizeof *b);
    init_linear(r, w, b, in, out);
    snprintf(name, sizeof name, "%s.weight", label);
    check_stats(name, w, (long)out * in, ws->v);
    snprintf(name, sizeof name, "%s.bias", label);
    check_stats(name, b, out, bs->v);

    /* The weight takes the generator's first out * in uniforms, the bias the next out. */
    rng r1, r2;
    rng_seed(&r1, 7);
    r2 = r1;
    init_linear(&r1, w, b, in, out);
    float wb = (float)ws->v[1], bb = (float)bs->v[1];
    long off = 0;
    for (long k = 0; k < (long)out * in; k++) {
        float u = rng_uniform(&r2);
        if (fabsf(w[k] - (-wb + 2 * wb * u)) > 1e-6f) off++;
    }
    for (long k = 0; k < out; k++)
        if (b[k] != -bb + 2 * bb * rng_uniform(&r2)) off++;
    ok(off == 0, "%s: weight drawn first, then bias (%ld values elsewhere)", label, off);
    free(w);
    free(b);
}

/* The labels of tests/golden/init.txt and the initializer each one names. */
static const struct {
    const char *label, *init;
} cases[] = {
    {"kaiming_uniform_a0", "kaiming_uniform"}, {"kaiming_uniform_a02", "kaiming_uniform"},
    {"kaiming_normal_a0", "kaiming_normal"},   {"xavier_uniform", "xavier_uniform"},
    {"xavier_uniform_gain2", "xavier_uniform"}, {"xavier_normal", "xavier_normal"},
    {"normal", "normal"},                      {"uniform", "uniform"},
    {"zeros", "zeros"},
};

static void test_case(const gd_file *f, rng *r, const char *label, const char *init)
{
    char name[128];
    snprintf(name, sizeof name, "%s.shape", label);
    const gd_entry *se = gd_get(f, name);
    snprintf(name, sizeof name, "%s.args", label);
    const gd_entry *ae = gd_get(f, name);
    snprintf(name, sizeof name, "%s.stats", label);
    const gd_entry *st = gd_get(f, name);
    const init_def *d = init_by_name(init);
    if (!ok(d != NULL, "initializer %s is in the table", init) || !se || !ae || !st) return;
    ag_shape s = {.ndim = (int)se->n};
    for (int k = 0; k < s.ndim; k++) s.d[k] = (int)se->v[k];
    float args[INIT_MAX_ARGS];
    init_default_args(d, args);
    for (int k = 0; k < d->args.nparams && k < ae->n; k++) args[k] = (float)ae->v[k];
    long n = (long)ag_numel(&s);
    float *x = ag_xmalloc((size_t)n * sizeof *x);
    for (long k = 0; k < n; k++) x[k] = NAN;
    ag_error err;
    if (ok(init_apply(d, args, r, x, &s, (ag_loc){0}, &err) == AG_OK, "%s: applies", label))
        check_stats(label, x, n, st->v);
    free(x);
}

static void test_table(void)
{
    for (int k = 0; k < init_ndefs; k++)
        ok(init_by_name(init_defs[k].name) == &init_defs[k], "init_by_name(\"%s\")",
           init_defs[k].name);
    ok(init_by_name("kaiming") == NULL, "an unknown name finds nothing");
    const init_def *n = init_by_name("normal");
    ok(init_arg_index(n, "std") == 1 && init_arg_index(n, "gain") == -1,
       "arguments by name: normal has std, no gain");

    int fi = 0, fo = 0;
    ag_error err;
    ag_shape conv = ag_shape4(64, 32, 3, 3);
    int rc = init_fans(&conv, &fi, &fo, (ag_loc){0}, &err);
    ok(rc == AG_OK && fi == 288 && fo == 576,
       "fans of [64, 32, 3, 3] are 288 in, 576 out (got %d, %d)", fi, fo);

    float b[5];
    ag_shape s = ag_shape1(5);
    rng r;
    rng_seed(&r, 1);
    rc = init_apply(init_by_name("xavier_uniform"), (float[]){1, 0}, &r, b, &s,
                        (ag_loc){"spec.yaml", 3, 5}, &err);
    ok(rc == AG_ERR, "xavier_uniform on a vector is an error");
    is_str(err.msg,
           "spec.yaml:3:5: fan in and fan out can not be computed for a tensor with fewer "
           "than 2 dimensions (this one is [5])",
           "its message names the place and the shape");
}

int main(void)
{
    gd_file f;
    if (gd_load(&f, "tests/golden/init.txt")) return tap_done();
    rng r;
    rng_seed(&r, 2024);
    test_linear(&f, &r, "linear_784_512");
    test_linear(&f, &r, "linear_100_256");
    for (size_t k = 0; k < AG_COUNTOF(cases); k++) test_case(&f, &r, cases[k].label, cases[k].init);
    test_table();
    gd_free(&f);
    return tap_done();
}
