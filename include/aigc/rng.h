/*
 * rng.h — the seeded random number generator (prefix rng_).
 *
 * xoshiro256** seeded through splitmix64. One generator per run, drawn from in a fixed
 * order on one thread, so that the same seed gives bit-identical results whatever the
 * thread count. The whole state is four words, saved as-is for exact resume.
 */
#ifndef AIGC_RNG_H
#define AIGC_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
    /* Box-Muller makes normals in pairs; the spare one is part of the state. */
    int has_spare;
    float spare;
} rng;

void rng_seed(rng *r, uint64_t seed);
/* Generator `stream` of a family seeded from one seed, for work cut into pieces that
 * each draw from their own (an evaluation's batches), whatever thread runs them. */
void rng_seed_stream(rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(rng *r);
/* Uniform in [0, 1) with 24 random bits, like a float32 can hold. */
float rng_uniform(rng *r);
/* Standard normal. */
float rng_normal(rng *r);
/* Uniform integer in [0, n). */
uint64_t rng_below(rng *r, uint64_t n);
void rng_fill_uniform(rng *r, float *x, int64_t n, float lo, float hi);
void rng_fill_normal(rng *r, float *x, int64_t n, float mean, float std);
/* The generator as n calls of rng_uniform (rng_normal, rng_below(r, bound)) would leave
 * it, their values unused: a shard's random op passes over the other rows' draws. */
void rng_skip_uniform(rng *r, int64_t n);
void rng_skip_normal(rng *r, int64_t n);
void rng_skip_below(rng *r, uint64_t bound, int64_t n);
/* Fisher-Yates shuffle of a permutation of int32 indices. */
void rng_shuffle(rng *r, int32_t *idx, int64_t n);

#endif
