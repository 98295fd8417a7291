/* init.c — torch.nn.init's distributions on our generator, and the table the spec
 * looks initializers up in. Bounds and stds are computed in double, as PyTorch does in
 * Python, and rounded to float once. */
#include "aigc/init.h"

#include <math.h>
#include <string.h>

/* ---- direct forms ------------------------------------------------------------------ */

void init_zeros(float *x, int64_t n) { memset(x, 0, (size_t)n * sizeof *x); }

void init_constant(float *x, int64_t n, float value)
{
    for (int64_t k = 0; k < n; k++) x[k] = value;
}

void init_uniform(rng *r, float *x, int64_t n, float lo, float hi)
{
    rng_fill_uniform(r, x, n, lo, hi);
}

void init_normal(rng *r, float *x, int64_t n, float mean, float std)
{
    rng_fill_normal(r, x, n, mean, std);
}

double init_kaiming_gain(double a) { return sqrt(2.0 / (1.0 + a * a)); }

/* a in double: nn.Linear passes math.sqrt(5), which a float would round. */
static void kaiming_uniform_impl(rng *r, float *x, int64_t n, double a, int fan_in)
{
    AG_ASSERT(fan_in > 0);
    /* A uniform on [-b, b] has std b / sqrt(3). */
    double bound = sqrt(3.0) * (init_kaiming_gain(a) / sqrt((double)fan_in));
    rng_fill_uniform(r, x, n, (float)-bound, (float)bound);
}

void init_kaiming_uniform(rng *r, float *x, int64_t n, float a, int fan_in)
{
    kaiming_uniform_impl(r, x, n, a, fan_in);
}

void init_kaiming_normal(rng *r, float *x, int64_t n, float a, int fan_in)
{
    AG_ASSERT(fan_in > 0);
    rng_fill_normal(r, x, n, 0.0f, (float)(init_kaiming_gain(a) / sqrt((double)fan_in)));
}

void init_xavier_uniform(rng *r, float *x, int64_t n, int fan_in, int fan_out, float gain)
{
    AG_ASSERT(fan_in + fan_out > 0);
    double bound = sqrt(3.0) * gain * sqrt(2.0 / (double)(fan_in + fan_out));
    rng_fill_uniform(r, x, n, (float)-bound, (float)bound);
}

void init_xavier_normal(rng *r, float *x, int64_t n, int fan_in, int fan_out, float gain)
{
    AG_ASSERT(fan_in + fan_out > 0);
    rng_fill_normal(r, x, n, 0.0f, (float)(gain * sqrt(2.0 / (double)(fan_in + fan_out))));
}

void init_linear(rng *r, float *w, float *b, int fan_in, int fan_out)
{
    kaiming_uniform_impl(r, w, (int64_t)fan_in * fan_out, sqrt(5.0), fan_in);
    if (b) {
        double bound = 1.0 / sqrt((double)fan_in);
        rng_fill_uniform(r, b, fan_out, (float)-bound, (float)bound);
    }
}

int init_fans(const ag_shape *s, int *fan_in, int *fan_out, ag_loc loc, ag_error *err)
{
    if (s->ndim < 2) {
        char buf[64];
        return ag_errorf(err, loc,
                         "fan in and fan out can not be computed for a tensor with fewer "
                         "than 2 dimensions (this one is %s)",
                         ag_shape_str(s, 0, buf, sizeof buf));
    }
    int receptive = 1;
    for (int k = 2; k < s->ndim; k++) receptive *= s->d[k];
    *fan_in = s->d[1] * receptive;
    *fan_out = s->d[0] * receptive;
    return AG_OK;
}

/* ---- the table ----------------------------------------------------------------------- */

static void fill_zeros(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_zeros(x, n);
}

static void fill_ones(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_constant(x, n, 1.0f);
}

static void fill_constant(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_constant(x, n, a[0]);
}

static void fill_uniform(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_uniform(r, x, n, a[0], a[1]);
}

static void fill_normal(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_normal(r, x, n, a[0], a[1]);
}

static void fill_kaiming_uniform(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_kaiming_uniform(r, x, n, a[0], fi);
}

static void fill_kaiming_normal(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_kaiming_normal(r, x, n, a[0], fi);
}

static void fill_xavier_uniform(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_xavier_uniform(r, x, n, fi, fo, a[0]);
}

static void fill_xavier_normal(rng *r, float *x, int64_t n, int fi, int fo, const float *a)
{
    init_xavier_normal(r, x, n, fi, fo, a[0]);
}

/* Names, argument names and defaults are torch.nn.init's (uniform_(a=0, b=1) names its
 * bounds a and b; kaiming's a is the negative slope). */
#define ARGS(...)                                                                          \
    {AB_CALL, (int)(sizeof((const ab_param[]){__VA_ARGS__}) / sizeof(ab_param)), 0,      \
     (const ab_param[]){__VA_ARGS__}, 0}
#define ARG(n, d) {.name = n, .dflt = d, .lo = -INFINITY, .hi = INFINITY}
const init_def init_defs[] = {
    {"zeros", {AB_CALL, 0, 0, NULL, 0}, 0, fill_zeros},
    {"ones", {AB_CALL, 0, 0, NULL, 0}, 0, fill_ones},
    {"constant", ARGS(ARG("val", 0)), 0, fill_constant},
    {"uniform", ARGS(ARG("a", 0), ARG("b", 1)), 0, fill_uniform},
    {"normal", ARGS(ARG("mean", 0), ARG("std", 1)), 0, fill_normal},
    {"kaiming_uniform", ARGS(ARG("a", 0)), 1, fill_kaiming_uniform},
    {"kaiming_normal", ARGS(ARG("a", 0)), 1, fill_kaiming_normal},
    {"xavier_uniform", ARGS(ARG("gain", 1)), 1, fill_xavier_uniform},
    {"xavier_normal", ARGS(ARG("gain", 1)), 1, fill_xavier_normal},
};
#undef ARG
#undef ARGS
const int init_ndefs = (int)AG_COUNTOF(init_defs);

const init_def *init_by_name(const char *name)
{
    for (int k = 0; k < init_ndefs; k++)
        if (strcmp(init_defs[k].name, name) == 0) return &init_defs[k];
    return NULL;
}

int init_arg_index(const init_def *d, const char *arg) { return ab_index(&d->args, arg); }

void init_default_args(const init_def *d, float *args)
{
    double v[AB_MAX_PARAMS];
    ab_defaults(&d->args, v);
    for (int k = 0; k < INIT_MAX_ARGS; k++) args[k] = k < d->args.nparams ? (float)v[k] : 0;
}

int init_apply(const init_def *d, const float *args, rng *r, float *x, const ag_shape *s,
               ag_loc loc, ag_error *err)
{
    int fan_in = 0, fan_out = 0;
    if (d->needs_fans && init_fans(s, &fan_in, &fan_out, loc, err)) return AG_ERR;
    d->fill(r, x, ag_numel(s), fan_in, fan_out, args);
    return AG_OK;
}
