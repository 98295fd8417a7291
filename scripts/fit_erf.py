#!/usr/bin/env python3
"""fit_erf.py: the coefficients of vm_erff (runtime/ops/vmath.h), and their error.

    /usr/bin/python3 scripts/fit_erf.py        # numpy only (Debian: python3-numpy)

For |x| < 1, erf x = x + x P(x^2), P(0) = 2/sqrt(pi) - 1: x itself is exact, so the
leading term loses nothing to rounding. For 1 <= |x| < 4, erf x = 1 - e^(-x^2) Q(s), Q
fitted to erfc(x) e^(x^2) in s = (1/x - 5/8) 8/3, which maps [1, 4] onto [-1, 1]. From 4
on, erf is 1 in float. Both are least-squares fits on Chebyshev nodes, weighted for
relative error, in double. Prints the coefficients as vmath.h writes them (highest power
first), then the largest error of their float evaluation against double, in ulps of
erf, over [-5, 5] and by range. The exponential is taken in double here; vm_expf adds
up to 1.2 ulp of e^(-x^2), which tests/test_vmath.c measures with the rest.
"""
import math

import numpy as np

N = 20000


def nodes(a, b):
    k = np.arange(N)
    return (a + b) / 2 + (b - a) / 2 * np.cos(np.pi * (k + 0.5) / N)


def fit(u, y, deg):
    return np.polynomial.polynomial.polyfit(u, y, deg, w=1 / np.abs(y))


def horner32(c, u):
    """The polynomial with coefficients c (lowest power first) at u, in float32."""
    u = u.astype(np.float32)
    r = np.full_like(u, np.float32(c[-1]))
    for a in c[-2::-1]:
        r = (r * u + np.float32(a)).astype(np.float32)
    return r


xs = nodes(0, 1)
p = fit(xs * xs, np.array([math.erf(x) / x for x in xs]), 7)
p[0] -= 1
xs = nodes(1, 4)
q = fit((1 / xs - 0.625) * (8 / 3), np.array([math.erfc(x) * math.exp(x * x) for x in xs]), 9)
print("P:", ", ".join("%.9e" % v for v in p[::-1]))
print("Q:", ", ".join("%.9e" % v for v in q[::-1]))

# The float evaluation, as vmath.h does it.
x = np.linspace(-5, 5, 400001).astype(np.float32)
a = np.minimum(np.abs(x), np.float32(4))
small = (a + (a * horner32(p, a * a)).astype(np.float32)).astype(np.float32)
with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # a = 0: not used
    s = ((np.float32(1) / a - np.float32(0.625)) * np.float32(8 / 3)).astype(np.float32)
    e = np.exp(-(a * a).astype(np.float32).astype(np.float64)).astype(np.float32)
    big = (np.float32(1) - e * horner32(q, s)).astype(np.float32)
got = np.copysign(np.where(a < 1, small, big), x).astype(np.float64)
want = np.array([math.erf(v) for v in x.astype(np.float64)])
err = np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
print("largest error %.2f ulp" % err.max())
for lo, hi in [(0, 0.1), (0.1, 0.5), (0.5, 1), (1, 2), (2, 3), (3, 5)]:
    m = (np.abs(x) >= lo) & (np.abs(x) < hi)
    print("  |x| in [%g, %g): %.2f ulp" % (lo, hi, err[m].max()))
