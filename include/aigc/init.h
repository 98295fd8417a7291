/*
 * init.h — parameter initializers that draw like PyTorch's torch.nn.init (prefix init_).
 *
 * The values come from our own generator (rng.h), so they are not PyTorch's values;
 * the distributions are PyTorch's exactly: the same bounds, means and standard
 * deviations, the same fans, the same gains. tests/test_golden_init.c checks this
 * against statistics written by PyTorch.
 *
 *     init_linear(&r, w, b, 784, 512);                 // nn.Linear(784, 512)'s default
 *
 *     const init_def *d = init_by_name("xavier_uniform"); // from a spec
 *     float args[INIT_MAX_ARGS];
 *     init_default_args(d, args);                      // then override by init_arg_index
 *     if (init_apply(d, args, &r, p->data, &p->shape, loc, &err)) ...
 *
 * Fans follow torch.nn.init._calculate_fan_in_and_fan_out: for a weight of shape
 * [out, in, k...], fan_in = in * prod(k) and fan_out = out * prod(k).
 */
#ifndef AIGC_INIT_H
#define AIGC_INIT_H

#include <stdint.h>

#include "aigc/args.h"
#include "aigc/base.h"
#include "aigc/graph.h"
#include "aigc/rng.h"

/* Direct forms. n is the element count; fans and gains as in PyTorch. */
void init_zeros(float *x, int64_t n);
void init_constant(float *x, int64_t n, float value);
void init_uniform(rng *r, float *x, int64_t n, float lo, float hi);
void init_normal(rng *r, float *x, int64_t n, float mean, float std);
/* gain = sqrt(2 / (1 + a^2)) (PyTorch's leaky_relu gain), mode fan_in. */
void init_kaiming_uniform(rng *r, float *x, int64_t n, float a, int fan_in);
void init_kaiming_normal(rng *r, float *x, int64_t n, float a, int fan_in);
void init_xavier_uniform(rng *r, float *x, int64_t n, int fan_in, int fan_out, float gain);
void init_xavier_normal(rng *r, float *x, int64_t n, int fan_in, int fan_out, float gain);
/* nn.Linear.reset_parameters: w [out, in] by kaiming_uniform with a = sqrt(5), which is
 * U(+-1/sqrt(in)), then b [out] (may be NULL) by U(+-1/sqrt(in)); in that order. */
void init_linear(rng *r, float *w, float *b, int fan_in, int fan_out);

/* PyTorch's leaky_relu gain, sqrt(2 / (1 + a^2)): kaiming's std is gain / sqrt(fan_in). */
double init_kaiming_gain(double a);

/* Fans of a weight shape. AG_ERR (PyTorch's message, at loc) below 2 dimensions. */
int init_fans(const ag_shape *s, int *fan_in, int *fan_out, ag_loc loc, ag_error *err);

/* Initializers by name, for the spec. */
enum { INIT_MAX_ARGS = 2 };

typedef struct init_def {
    const char *name;                       /* "kaiming_uniform" */
    ab_sig args;                            /* PyTorch's argument names and defaults */
    int needs_fans;                         /* only for tensors of 2 or more dimensions */
    void (*fill)(rng *r, float *x, int64_t n, int fan_in, int fan_out, const float *args);
} init_def;

extern const init_def init_defs[];
extern const int init_ndefs;

/* NULL when no initializer has that name. */
const init_def *init_by_name(const char *name);
/* Index into d->arg_names, or -1. */
int init_arg_index(const init_def *d, const char *arg);
void init_default_args(const init_def *d, float *args);
/* Fills x (of shape s) by d with args. AG_ERR when d needs fans that s lacks. */
int init_apply(const init_def *d, const float *args, rng *r, float *x, const ag_shape *s,
               ag_loc loc, ag_error *err);

#endif
