/*
 * test_quality.c — the sample-quality measures: feature statistics against a direct
 * two-pass computation, the Fréchet distance against its closed forms (exactly for
 * known parameters, within sampling error for large samples), and the classifier
 * score and class histogram on predictions whose values are known.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/quality.h"
#include "aigc/rng.h"
#include "tap.h"

/* ---- helpers ----------------------------------------------------------------- */

/* The lower Cholesky factor l of a symmetric positive definite s[d, d]. */
static void cholesky(int d, const double *s, double *l)
{
    memset(l, 0, (size_t)d * d * sizeof *l);
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            double v = s[i * d + j];
            for (int k = 0; k < j; k++) v -= l[i * d + k] * l[j * d + k];
            l[i * d + j] = i == j ? sqrt(v) : v / l[j * d + j];
        }
}

/* n draws from N(mu, s) into stats, in batches of 1000. */
static void sample_gaussian(rng *r, int d, const double *mu, const double *s, int64_t n, qm_stats *st)
{
    double *l = malloc((size_t)d * d * sizeof *l), z[16];
    float *x = malloc(1000 * (size_t)d * sizeof *x);
    cholesky(d, s, l);
    for (int64_t done = 0; done < n; done += 1000) {
        for (int b = 0; b < 1000; b++) {
            for (int i = 0; i < d; i++) z[i] = rng_normal(r);
            for (int i = 0; i < d; i++) {
                double v = mu[i];
                for (int k = 0; k <= i; k++) v += l[i * d + k] * z[k];
                x[b * d + i] = (float)v;
            }
        }
        qm_stats_add(st, x, 1000);
    }
    free(l);
    free(x);
}

/* q: a random orthogonal d x d matrix, the product of d Householder reflections. */
static void random_orthogonal(rng *r, int d, double *q)
{
    memset(q, 0, (size_t)d * d * sizeof *q);
    for (int i = 0; i < d; i++) q[i * d + i] = 1;
    double v[16], t[16];
    for (int h = 0; h < d; h++) {
        double norm = 0;
        for (int i = 0; i < d; i++) {
            v[i] = rng_normal(r);
            norm += v[i] * v[i];
        }
        /* q = q (I - 2 v v^T / |v|^2) */
        for (int i = 0; i < d; i++) {
            t[i] = 0;
            for (int k = 0; k < d; k++) t[i] += q[i * d + k] * v[k];
        }
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) q[i * d + j] -= 2 * t[i] * v[j] / norm;
    }
}

static double frechet(int d, const double *mu1, const double *s1, const double *mu2, const double *s2)
{
    double out = NAN;
    ag_error err;
    if (qm_frechet(d, mu1, s1, mu2, s2, &out, &err)) diag("%s", err.msg);
    return out;
}

/* ---- statistics ---------------------------------------------------------------- */

/* Uneven batches, values far from 0 (where a naive sum of squares loses digits):
 * the merged mean and covariance equal a two-pass computation in double. */
static void test_stats(void)
{
    enum { N = 1003, D = 5 };
    static float x[N * D];
    rng r;
    rng_seed(&r, 1);
    for (int k = 0; k < N * D; k++) x[k] = 1000.0f + (float)(k % D) + rng_normal(&r) * (float)(1 + k % D);
    double mean[D] = {0}, cov[D * D] = {0}, got[D * D];
    for (int k = 0; k < N; k++)
        for (int i = 0; i < D; i++) mean[i] += x[k * D + i] / (double)N;
    for (int k = 0; k < N; k++)
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) cov[i * D + j] += (x[k * D + i] - mean[i]) * (x[k * D + j] - mean[j]) / (N - 1);
    qm_stats s;
    qm_stats_init(&s, D);
    int sizes[] = {1, 2, 500, 7, 493};
    for (int b = 0, at = 0; b < 5; at += sizes[b++]) qm_stats_add(&s, x + at * D, sizes[b]);
    qm_stats_cov(&s, got);
    ok(s.count == N, "stats: %lld rows counted", (long long)s.count);
    double em = 0, ec = 0;
    for (int i = 0; i < D; i++) em = fmax(em, fabs(s.mean[i] - mean[i]));
    for (int i = 0; i < D * D; i++) ec = fmax(ec, fabs(got[i] - cov[i]) / fmax(fabs(cov[i]), 1));
    ok(em < 1e-9, "stats: merged batch means equal the two-pass mean (max error %.3g)", em);
    ok(ec < 1e-9, "stats: merged co-moments give the two-pass covariance (max error %.3g)", ec);
    qm_stats_free(&s);
}

/* ---- Fréchet distance: closed forms ----------------------------------------------- */

static void test_frechet_exact(void)
{
    /* Diagonal: sum (sqrt a - sqrt b)^2 + |mu1 - mu2|^2. */
    double mu1[3] = {0, 1, 2}, mu2[3] = {1, 1, 0};
    double s1[9] = {4, 0, 0, 0, 1, 0, 0, 0, 9}, s2[9] = {1, 0, 0, 0, 1, 0, 0, 0, 0.25};
    double want = 1 + 4 + (2 - 1) * (2 - 1) + 0 + (3 - 0.5) * (3 - 0.5);
    is_close(frechet(3, mu1, s1, mu2, s2), want, 1e-10, 1e-12, "frechet: diagonal covariances, closed form");
    is_close(frechet(3, mu1, s1, mu1, s1), 0, 1e-10, 0, "frechet: a Gaussian to itself is 0");

    /* 2 x 2, not commuting: for M = S1^1/2 S2 S1^1/2, Tr M^1/2 = sqrt(tr M + 2 sqrt(det M))
     * (the square root of a 2 x 2 PSD matrix), with tr M = tr(S1 S2) and det M =
     * det S1 det S2. */
    double a[4] = {2, 0.8, 0.8, 1}, b[4] = {1, -0.5, -0.5, 3}, m0[2] = {0, 0}, m1[2] = {0.5, -1};
    double tr12 = a[0] * b[0] + a[1] * b[2] + a[2] * b[1] + a[3] * b[3];
    double det = (a[0] * a[3] - a[1] * a[2]) * (b[0] * b[3] - b[1] * b[2]);
    double want2 = 0.25 + 1 + (2 + 1) + (1 + 3) - 2 * sqrt(tr12 + 2 * sqrt(det));
    is_close(frechet(2, m0, a, m1, b), want2, 1e-10, 1e-12, "frechet: 2x2 correlated covariances, closed form");
    is_close(frechet(2, m1, b, m0, a), want2, 1e-10, 1e-12, "frechet: symmetric in its two Gaussians");

    /* Rank-deficient: the clamped square roots of 0 eigenvalues. */
    double p[4] = {1, 0, 0, 0}, q[4] = {0, 0, 0, 1};
    is_close(frechet(2, m0, p, m0, q), 2, 1e-10, 0, "frechet: singular covariances (diag(1,0) to diag(0,1)) give 2");
}

/* S1 = c I and S2 = Q diag(e) Q^T with Q a random rotation: the distance is
 * |mu1 - mu2|^2 + sum (sqrt c - sqrt e_i)^2, whatever Q. */
enum { RD = 6 };
static const double rot_c = 1.5, rot_e[RD] = {0.2, 0.5, 1, 2, 3, 5};

static void rotated_case(double *s1, double *s2, double *mu1, double *mu2, double *want)
{
    rng r;
    rng_seed(&r, 7);
    double q[RD * RD];
    random_orthogonal(&r, RD, q);
    *want = 0;
    for (int i = 0; i < RD; i++) {
        mu1[i] = 0.1 * i;
        mu2[i] = 0.3 - 0.05 * i;
        *want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + (sqrt(rot_c) - sqrt(rot_e[i])) * (sqrt(rot_c) - sqrt(rot_e[i]));
        for (int j = 0; j < RD; j++) {
            s1[i * RD + j] = i == j ? rot_c : 0;
            s2[i * RD + j] = 0;
            for (int k = 0; k < RD; k++) s2[i * RD + j] += q[i * RD + k] * rot_e[k] * q[j * RD + k];
        }
    }
}

static void test_frechet_rotated(void)
{
    double s1[RD * RD], s2[RD * RD], mu1[RD], mu2[RD], want;
    rotated_case(s1, s2, mu1, mu2, &want);
    is_close(frechet(RD, mu1, s1, mu2, s2), want, 1e-9, 1e-12, "frechet: 6-d, rotated non-diagonal covariance, closed form");
    /* Swapping the sides puts the rotated matrix under the square root. */
    is_close(frechet(RD, mu2, s2, mu1, s1), want, 1e-9, 1e-12, "frechet: the same with the sides swapped");
}

/* ---- Fréchet distance: from samples ---------------------------------------------- */

/* With N = 200,000 draws a side, the estimate strays from the population value
 * mostly through the sample means: |mu1 - mu2 + e|^2 with e ~ N(0, (S1 + S2) / N)
 * has a cross term 2 delta.e of standard deviation 2 sqrt(delta^T (S1 + S2) delta / N),
 * about 0.01 for these parameters, and a bias tr(S1 + S2) / N of about 1e-4. The
 * covariance estimates (entries with standard errors sigma_i sigma_j sqrt(2 / N), about
 * 0.003 sigma^2) add less. Over five seeds the error stayed below 0.02; the tolerance
 * is 0.05, far below the distances (about 2.6) being checked. */
static void test_frechet_sampled(void)
{
    const int64_t n = 200000;
    ag_error err;
    rng r;
    rng_seed(&r, 11);
    double a[4] = {2, 0.8, 0.8, 1}, b[4] = {1, -0.5, -0.5, 3}, m0[2] = {0, 0}, m1[2] = {0.5, -1};
    double want = frechet(2, m0, a, m1, b), got = NAN;
    qm_stats x, y;
    qm_stats_init(&x, 2);
    qm_stats_init(&y, 2);
    sample_gaussian(&r, 2, m0, a, n, &x);
    sample_gaussian(&r, 2, m1, b, n, &y);
    ok(qm_frechet_stats(&x, &y, &got, &err) == AG_OK, "frechet: from samples runs");
    is_close(got, want, 0.05, 0, "frechet: 2x2 from 200,000 draws a side matches the closed form (%.4f)", want);
    diag("sampled %.5f, error %.2g", got, got - want);
    qm_stats_free(&x);
    qm_stats_free(&y);

    double s1[RD * RD], s2[RD * RD], mu1[RD], mu2[RD];
    rotated_case(s1, s2, mu1, mu2, &want);
    qm_stats_init(&x, RD);
    qm_stats_init(&y, RD);
    sample_gaussian(&r, RD, mu1, s1, n, &x);
    sample_gaussian(&r, RD, mu2, s2, n, &y);
    qm_frechet_stats(&x, &y, &got, &err);
    is_close(got, want, 0.05, 0, "frechet: 6-d rotated from 200,000 draws a side matches the closed form (%.4f)", want);
    diag("sampled %.5f, error %.2g", got, got - want);
    qm_stats_free(&x);
    qm_stats_free(&y);
}

/* The same features twice give 0; the same features moved by delta give |delta|^2
 * (equal covariances cancel exactly). Not Gaussian on purpose: uniform values. */
static void test_frechet_sets(void)
{
    enum { N = 2000, D = 16 };
    static float f[N * D], g[N * D];
    rng r;
    rng_seed(&r, 3);
    double delta[D], want = 0;
    for (int i = 0; i < D; i++) {
        delta[i] = 0.25 * (i % 5) - 0.5;
        want += delta[i] * delta[i];
    }
    for (int k = 0; k < N * D; k++) {
        f[k] = rng_uniform(&r) * (float)(1 + k % 3);
        g[k] = (float)(f[k] + delta[k % D]);
    }
    /* Correlate the columns a little, so the covariance is not diagonal. */
    for (int k = 0; k < N; k++)
        for (int i = 1; i < D; i++) f[k * D + i] += 0.5f * f[k * D + i - 1], g[k * D + i] = (float)(f[k * D + i] + delta[i]);
    qm_stats a, b, c;
    qm_stats_init(&a, D);
    qm_stats_init(&b, D);
    qm_stats_init(&c, D);
    qm_stats_add(&a, f, N);
    qm_stats_add(&b, f, 700);
    qm_stats_add(&b, f + 700 * D, N - 700);
    qm_stats_add(&c, g, N);
    double same = NAN, shifted = NAN;
    ag_error err;
    qm_frechet_stats(&a, &b, &same, &err);
    qm_frechet_stats(&a, &c, &shifted, &err);
    ok(fabs(same) < 1e-6, "frechet: identical sets give ~0 (%.3g)", same);
    is_close(shifted, want, 1e-5, 1e-5, "frechet: a set shifted by delta gives |delta|^2");
    qm_stats_free(&a);
    qm_stats_free(&b);
    qm_stats_free(&c);
}

/* ---- classes ----------------------------------------------------------------------- */

static void test_classes(void)
{
    enum { K = 10, N = 200 };
    static float p[N * K];
    qm_classes c;

    /* Confident and uniform over the classes: exactly K. */
    memset(p, 0, sizeof p);
    for (int k = 0; k < N; k++) p[k * K + k % K] = 1;
    qm_classes_init(&c, K);
    qm_classes_add(&c, p, 37);
    qm_classes_add(&c, p + 37 * K, N - 37);
    is_close(qm_score(&c), K, 1e-9, 1e-12, "score: one-hot predictions, equal classes give the class count");
    is_close(qm_coverage(&c, 0.5 / K), 1, 0, 0, "coverage: every class covered");
    is_close(qm_hist_kl(&c), 0, 1e-12, 0, "hist kl: equal counts give 0");
    qm_classes_free(&c);

    /* The same prediction for every image, however spread: exactly 1. */
    for (int k = 0; k < N; k++)
        for (int y = 0; y < K; y++) p[k * K + y] = (float)(y + 1) / 55.0f;
    qm_classes_init(&c, K);
    qm_classes_add(&c, p, N);
    is_close(qm_score(&c), 1, 1e-6, 0, "score: constant predictions give 1");
    is_close(qm_coverage(&c, 0.5 / K), 0.1, 0, 0, "coverage: all argmaxes on one class cover 1 of 10");
    is_close(qm_hist_kl(&c), log(K), 1e-12, 0, "hist kl: one class gives log(classes)");
    qm_classes_free(&c);

    /* Two classes, half the images at (q, 1-q) and half at (1-q, q): p(y) is uniform,
     * so the score is exp(log 2 - H(q)). */
    float two[4] = {0.8f, 0.2f, 0.2f, 0.8f};
    qm_classes_init(&c, 2);
    qm_classes_add(&c, two, 2);
    double hq = -(0.8 * log(0.8) + 0.2 * log(0.2));
    is_close(qm_score(&c), exp(log(2) - hq), 1e-6, 1e-6, "score: two soft classes give exp(log 2 - H(q))");
    qm_classes_free(&c);

    /* The requested classes: rows (0.8, 0.2) and (0.2, 0.8) asked for 0 and 0 match once;
     * ties go to the first class, as in the histogram. */
    float tie[2] = {0.5f, 0.5f};
    const uint8_t asked[] = {0, 0}, first[] = {0}, second[] = {1};
    qm_classes_init(&c, 2);
    ok(isnan(qm_class_match(&c)), "class match: NaN before any requested class");
    qm_classes_match(&c, two, asked, 2);
    is_close(qm_class_match(&c), 0.5, 0, 0, "class match: one of two argmaxes at the requested class");
    qm_classes_match(&c, tie, first, 1);
    qm_classes_match(&c, tie, second, 1);
    is_close(qm_class_match(&c), 0.5, 0, 0, "class match: a tie counts for the first class only");
    ok(c.count == 0, "class match: the histogram's count is qm_classes_add's alone");
    qm_classes_free(&c);

    /* Softmax: rows sum to 1, large logits stay finite, known values. */
    float x[6] = {0, 0, (float)log(3.0), 1000, 1000, -1000};
    qm_softmax_rows(x, 2, 3);
    is_close(x[0], 0.2, 1e-7, 0, "softmax: (0, 0, log 3) gives 0.2 ...");
    is_close(x[2], 0.6, 1e-7, 0, "softmax: ... and 0.6");
    ok(x[3] == 0.5f && x[4] == 0.5f && x[5] == 0.0f, "softmax: logits of 1000 do not overflow");
}

int main(void)
{
    test_stats();
    test_frechet_exact();
    test_frechet_rotated();
    test_frechet_sampled();
    test_frechet_sets();
    test_classes();
    return tap_done();
}
