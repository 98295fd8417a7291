/* rng.c — xoshiro256** (Blackman and Vigna), seeded by splitmix64; Box-Muller normals. */
#include "aigc/rng.h"

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

float rng_normal(rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    /* 1 - u keeps the log argument in (0, 1]. Computed in double: the radius of a
     * float-precision u near 0 would be coarse in the tails. */
    double u = 1.0 - (double)(rng_u64(r) >> 11) * 0x1.0p-53;
    double v = (double)(rng_u64(r) >> 11) * 0x1.0p-53;
    double rad = sqrt(-2.0 * log(u)), th = 2.0 * M_PI * v;
    r->spare = (float)(rad * sin(th));
    r->has_spare = 1;
    return (float)(rad * cos(th));
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

void rng_fill_normal(rng *r, float *x, int64_t n, float mean, float std)
{
    for (int64_t k = 0; k < n; k++) x[k] = mean + std * rng_normal(r);
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
