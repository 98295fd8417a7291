/* rng.c — xoshiro256** (Blackman and Vigna), seeded by splitmix64; Box-Muller normals. */
#include "aigc/rng.h"
#include "aigc/pool.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(rng *r, uint64_t seed)
{
    for (int k = 0; k < 4; k++) r->s[k] = splitmix64(&seed);
    r->has_spare = 0;
    r->spare = 0;
}

void rng_seed_stream(rng *r, uint64_t seed, uint64_t stream)
{
    /* The stream number hashed, not added: seeds a fixed step apart would give states
     * that splitmix64's own steps make overlap. */
    rng_seed(r, seed ^ splitmix64(&stream));
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_u64(rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float rng_uniform(rng *r) { return (float)(rng_u64(r) >> 40) * 0x1.0p-24f; }

/* The pair of normals two words make: *c the one returned first, *s the spare. 1 - u
 * keeps the log argument in (0, 1]. Computed in double: the radius of a float-precision
 * u near 0 would be coarse in the tails. */
static void box_muller(uint64_t w0, uint64_t w1, float *c, float *s)
{
    double u = 1.0 - (double)(w0 >> 11) * 0x1.0p-53;
    double v = (double)(w1 >> 11) * 0x1.0p-53;
    double rad = sqrt(-2.0 * log(u)), th = 2.0 * M_PI * v;
    *s = (float)(rad * sin(th));
    *c = (float)(rad * cos(th));
}

float rng_normal(rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    uint64_t w0 = rng_u64(r), w1 = rng_u64(r);
    float c;
    box_muller(w0, w1, &c, &r->spare);
    r->has_spare = 1;
    return c;
}

uint64_t rng_below(rng *r, uint64_t n)
{
    /* Rejection removes the modulo bias (Lemire's threshold). */
    uint64_t limit = -n % n;
    for (;;) {
        uint64_t x = rng_u64(r);
        if (x >= limit) return x % n;
    }
}

void rng_fill_uniform(rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t k = 0; k < n; k++) x[k] = lo + (hi - lo) * rng_uniform(r);
}

/* rng_fill_normal's pairs: the words drawn in order on the calling thread, the log and
 * the sine and cosine of each pair (most of the time: on one thread, a GAN epoch's
 * noise is 4 % of it) on the pool, each pair's on its own words: the same values as
 * rng_normal's, one by one. */
enum { NORMAL_PAIRS = 1024 };

typedef struct normal_job {
    const uint64_t *w;
    float *x, mean, std;
} normal_job;

static void normal_pairs(void *ctx, int64_t lo, int64_t hi)
{
    const normal_job *j = ctx;
    for (int64_t p = lo; p < hi; p++) {
        float c, s;
        box_muller(j->w[2 * p], j->w[2 * p + 1], &c, &s);
        j->x[2 * p] = j->mean + j->std * c;
        j->x[2 * p + 1] = j->mean + j->std * s;
    }
}

void rng_fill_normal(rng *r, float *x, int64_t n, float mean, float std)
{
    int64_t k = 0;
    if (n > 0 && r->has_spare) x[k++] = mean + std * rng_normal(r);
    uint64_t w[2 * NORMAL_PAIRS];
    while (n - k >= 2) {
        int64_t pairs = (n - k) / 2 < NORMAL_PAIRS ? (n - k) / 2 : NORMAL_PAIRS;
        for (int64_t p = 0; p < 2 * pairs; p++) w[p] = rng_u64(r);
        tp_for_items(pairs, 64, normal_pairs, &(normal_job){w, x + k, mean, std});
        k += 2 * pairs;
    }
    if (k < n) x[k] = mean + std * rng_normal(r);
}

void rng_skip_uniform(rng *r, int64_t n)
{
    for (int64_t k = 0; k < n; k++) rng_u64(r);
}

void rng_skip_normal(rng *r, int64_t n)
{
    if (n > 0 && r->has_spare) {
        r->has_spare = 0;
        n--;
    }
    /* A pair of normals is two words; only an odd one out needs its spare made. */
    for (int64_t k = 0; k + 2 <= n; k += 2) {
        rng_u64(r);
        rng_u64(r);
    }
    if (n & 1) rng_normal(r);
}

void rng_skip_below(rng *r, uint64_t bound, int64_t n)
{
    for (int64_t k = 0; k < n; k++) rng_below(r, bound);
}

void rng_shuffle(rng *r, int32_t *idx, int64_t n)
{
    for (int64_t k = n - 1; k > 0; k--) {
        int64_t j = (int64_t)rng_below(r, (uint64_t)k + 1);
        int32_t t = idx[k];
        idx[k] = idx[j];
        idx[j] = t;
    }
}
