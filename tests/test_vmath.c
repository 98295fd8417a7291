/* test_vmath.c — the accuracy vmath.h's header states for its vectorizable exp, log,
 * tanh, sigmoid and erf: each is swept across its range (about a million floats spread
 * evenly over the bit patterns, both signs) against the double-precision function, and
 * its largest error in float ulps is held to a bound a little above the one measured;
 * then the values at the edges: NaN, zeros, infinities, underflow. */
#include <float.h>
#include <stdint.h>

#include "../runtime/ops/vmath.h"
#include "tap.h"

typedef float (*fn32)(float);
typedef double (*fn64)(double);

static double sigmoid64(double x) { return 1 / (1 + exp(-x)); }

/* The error of got against want, in units of the float spacing at want. */
static double ulps(float got, double want)
{
    float w = (float)want;
    double spacing = (double)nextafterf(fabsf(w), INFINITY) - fabsf(w);
    return fabs((double)got - want) / spacing;
}

static float from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* The largest error over |x| in [lo, hi] with the signs `signs` allows (1: positive,
 * 2: negative, 3: both); *where gets the worst x. */
static double sweep(fn32 f, fn64 ref, float lo, float hi, int signs, float *where)
{
    uint32_t a = to_bits(lo), b = to_bits(hi), step = (b - a) / 500000 + 1;
    double worst = 0;
    for (uint32_t u = a; u <= b && u >= a; u += step)
        for (int s = 0; s < 2; s++) {
            if (!(signs >> s & 1)) continue;
            float x = s ? -from_bits(u) : from_bits(u);
            double e = ulps(f(x), ref((double)x));
            if (e > worst) worst = e, *where = x;
        }
    return worst;
}

static void accuracy(const char *name, fn32 f, fn64 ref, float lo, float hi, int signs,
                     double bound)
{
    float at = 0;
    double e = sweep(f, ref, lo, hi, signs, &at);
    ok(e <= bound, "%s within %.1f ulp over |x| in [%g, %g] (worst %.2f at %.9g)", name, bound,
       lo, hi, e, at);
}

int main(void)
{
    accuracy("exp", vm_expf, exp, 0, 88.7f, 1, 1.5);
    accuracy("exp", vm_expf, exp, 0, 103.0f, 2, 1.5); /* down to the subnormal results */
    accuracy("log", vm_logf, log, from_bits(1), FLT_MAX, 1, 2.0); /* subnormals included */
    accuracy("tanh", vm_tanhf, tanh, 0, 10, 3, 2.5);
    accuracy("sigmoid", vm_sigmoidf, sigmoid64, 0, 80, 3, 2.5);
    accuracy("erf", vm_erff, erf, 0, 6, 3, 2.0);

    ok(isnan(vm_expf(NAN)) && isnan(vm_logf(NAN)) && isnan(vm_tanhf(NAN)) &&
       isnan(vm_sigmoidf(NAN)) && isnan(vm_erff(NAN)), "a NaN in gives a NaN out, for each");
    ok(vm_expf(-INFINITY) == 0 && vm_expf(INFINITY) == INFINITY && vm_expf(0) == 1,
       "exp: 0 at -inf, inf at inf, 1 at 0");
    ok(vm_logf(0) == -INFINITY && vm_logf(INFINITY) == INFINITY && isnan(vm_logf(-1)) &&
       vm_logf(1) == 0, "log: -inf at 0, inf at inf, NaN below 0, 0 at 1");
    ok(vm_tanhf(INFINITY) == 1 && vm_tanhf(-INFINITY) == -1 && vm_sigmoidf(INFINITY) == 1 &&
       vm_sigmoidf(-INFINITY) == 0, "tanh and sigmoid at the infinities");
    ok(vm_erff(INFINITY) == 1 && vm_erff(-INFINITY) == -1 && vm_erff(4) == 1 &&
       vm_erff(0) == 0 && signbit(vm_erff(-0.0f)), "erf: +-1 at the infinities and from 4 on, "
       "+-0 at +-0");
    return tap_done();
}
