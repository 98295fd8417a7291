/*
 * vmath.h — exp, log, tanh, sigmoid and erf written so that a loop over them vectorizes,
 * and lane sums, the order of a long float sum that vectorizes.
 *
 * libm's expf, logf, tanhf and erff are calls, so a loop around them runs one element at
 * a time; these are branch-free float arithmetic (selects, not ifs) that GCC turns into
 * SSE or AVX code. Accuracy, measured against double over their ranges: exp 1.2 ulp,
 * log 1.8, tanh 2.3, sigmoid 2.4, erf 1.4 (tests/test_vmath.c holds them to it), far
 * inside the PyTorch golden tolerances (1e-6 + 1e-5 |ref|). A NaN in gives a NaN out: the
 * clamps are written as `x > hi ? hi : x`, which keeps a NaN, so a diverged run is still
 * caught.
 */
#ifndef AIGC_OPS_VMATH_H
#define AIGC_OPS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 2^n for an integer n in [-126, 127], from the exponent bits. */
static inline float vm_pow2i(int32_t n)
{
    /* Unsigned, so that a NaN's garbage n wraps instead of overflowing: the NaN comes
     * out of the polynomial anyway. */
    uint32_t bits = ((uint32_t)n + 127u) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* e^x = 2^n e^r, n = round(x / ln 2), |r| <= ln 2 / 2. r is x - n ln 2 in two steps
 * (ln 2's high part has few bits, so n times it is exact); e^r is 1 + r + r^2 P(r) with
 * P of degree 4, fitted by weighted least squares on [-ln 2 / 2, ln 2 / 2] (relative
 * error 4e-9 before rounding). 2^n is applied as two factors so that results in the
 * subnormal range come out right; x is clamped where e^x is 0 or +inf anyway. */
static inline float vm_expf(float x)
{
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    uint32_t tbits;
    memcpy(&tbits, &t, sizeof tbits);
    int32_t ni = (int32_t)(tbits - 0x4b400000u); /* less the shifter's bits: n */
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.42860682030941723e-6f;
    float p = 0.0013751407386735082f;
    p = p * r + 0.008368915878236294f;
    p = p * r + 0.04166953265666962f;
    p = p * r + 0.166665181517601f;
    p = p * r + 0.49999988079071045f;
    float er = 1.0f + r + r * r * p;
    int32_t n1 = ni >> 1;
    return er * vm_pow2i(n1) * vm_pow2i(ni - n1);
}

/* Near 0, (e^2x - 1) / (e^2x + 1) loses digits to the subtraction, so |x| < 0.25 takes
 * the Taylor series (to x^11: the next term is below 1e-10 relative). Beyond 9, tanh
 * is 1 in float. */
static inline float vm_tanhf(float x)
{
    float a = fabsf(x);
    float ac = a > 9.0f ? 9.0f : a;
    float e = vm_expf(2.0f * ac);
    float big = copysignf((e - 1.0f) / (e + 1.0f), x);
    float x2 = x * x;
    float s = -1382.0f / 155925.0f;
    s = s * x2 + 62.0f / 2835.0f;
    s = s * x2 - 17.0f / 315.0f;
    s = s * x2 + 2.0f / 15.0f;
    s = s * x2 - 1.0f / 3.0f;
    float small = x + x * x2 * s;
    return a < 0.25f ? small : big;
}

/* With e = e^-|x|: 1 / (1 + e) for x >= 0, e / (1 + e) below, so that nothing
 * overflows and small values keep their digits. */
static inline float vm_sigmoidf(float x)
{
    float e = vm_expf(-fabsf(x));
    float d = 1.0f + e;
    return x >= 0 ? 1.0f / d : e / d;
}

/* log x = e ln 2 + log m for x = m 2^e with m in [sqrt(1/2), sqrt(2)), and
 * log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172: its odd series to s^11 is
 * exact to 1e-10. Subnormal x is scaled into the normal range first; 0 gives -inf, a
 * negative x NaN, +inf +inf. */
static inline float vm_logf(float x)
{
    int sub = x < 1.17549435e-38f;
    float xs = sub ? x * 8388608.0f : x; /* 2^23 */
    int32_t bits;
    memcpy(&bits, &xs, sizeof bits);
    /* bits - the bits of sqrt(1/2) puts the exponent step at sqrt(1/2), not at 1 */
    int32_t e = ((bits - 0x3f3504f3) >> 23);
    uint32_t mbits = (uint32_t)bits - ((uint32_t)e << 23); /* unsigned: e may be < 0 */
    float m;
    memcpy(&m, &mbits, sizeof m);
    float ef = (float)e - (sub ? 23.0f : 0.0f);
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float q = 1.0f / 11.0f;
    q = q * s2 + 1.0f / 9.0f;
    q = q * s2 + 1.0f / 7.0f;
    q = q * s2 + 1.0f / 5.0f;
    q = q * s2 + 1.0f / 3.0f;
    float lm = 2.0f * s + 2.0f * s * s2 * q;
    float r = ef * 0.693145751953125f + (lm + ef * 1.42860682030941723e-6f);
    r = x == 0 ? -INFINITY : r;
    r = x == INFINITY ? INFINITY : r;
    return x < 0 || x != x ? NAN : r;
}

/* For |x| < 1, erf x = x + x P(x^2): x is exact, so the leading term loses nothing to
 * rounding. For 1 <= |x| < 4, erf x = 1 - e^(-x^2) Q(s), s = (1/|x| - 5/8) 8/3 in [-1, 1],
 * Q fitted to erfc(x) e^(x^2), which is smooth in 1/x. From 4 on erf is 1 in float, so
 * |x| is clamped there. P and Q are weighted least-squares fits on Chebyshev nodes made
 * by scripts/fit_erf.py, which also prints the error of this float evaluation. */
static inline float vm_erff(float x)
{
    float a = fabsf(x);
    a = a > 4.0f ? 4.0f : a;
    float z = a * a;
    float p = -9.689741087e-06f;
    p = p * z + 1.127473795e-04f;
    p = p * z - 8.485438919e-04f;
    p = p * z + 5.221138696e-03f;
    p = p * z - 2.686547551e-02f;
    p = p * z + 1.128378344e-01f;
    p = p * z - 3.761263855e-01f;
    p = p * z + 1.283791671e-01f;
    float small = a + a * p;
    float s = (1.0f / a - 0.625f) * (8.0f / 3.0f); /* a = 0: not used */
    float q = 4.702447760e-06f;
    q = q * s - 2.668957444e-06f;
    q = q * s - 3.007133887e-05f;
    q = q * s + 1.239887318e-04f;
    q = q * s - 3.466204778e-04f;
    q = q * s + 4.600746056e-04f;
    q = q * s + 2.307605919e-03f;
    q = q * s - 2.424286262e-02f;
    q = q * s + 1.433564456e-01f;
    q = q * s + 3.059529896e-01f;
    float big = 1.0f - vm_expf(-z) * q;
    return copysignf(a < 1.0f ? small : big, x);
}

/* Lane sums: the sum of a run of floats with term k added to partial sum k % VM_LANES
 * and the partial sums added pairwise at the end. A running sum cannot vectorize (each
 * add waits on the last, and C fixes their order); this order can, one vector add per
 * VM_LANES terms, and it is the same on every clone (AG_SIMD_CLONES) and at every
 * thread count, so are the bits. A loop fills an array of VM_LANES zeros as
 * `s[k % VM_LANES] += term` in whole rounds of VM_LANES, then vm_lanes_total. */
enum { VM_LANES = 16 };

static inline float vm_lanes_total(float s[VM_LANES])
{
    for (int w = VM_LANES / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++) s[k] += s[k + w];
    return s[0];
}

/* The same order for partial sums kept in double (the norms' statistics). */
static inline double vm_lanes_total_d(double s[VM_LANES])
{
    for (int w = VM_LANES / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++) s[k] += s[k + w];
    return s[0];
}

#endif
