/*
 * probe.h — what the benchmark probes share: the median time of a call.
 */
#ifndef AIGC_BENCH_PROBE_H
#define AIGC_BENCH_PROBE_H

#include <stdlib.h>
#include <time.h>

enum { PROBE_ROUNDS = 5 };

static double probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int probe_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds per call of fn(ctx): each of PROBE_ROUNDS rounds repeats it for at least
 * `least` seconds, and the median round is kept; other work on the machine makes a
 * single round noisy. */
static double probe_seconds(void (*fn)(void *), void *ctx, double least)
{
    double r[PROBE_ROUNDS];
    for (int round = 0; round < PROBE_ROUNDS; round++) {
        long reps = 0;
        double t0 = probe_now(), t;
        do {
            fn(ctx);
            reps++;
            t = probe_now() - t0;
        } while (t < least);
        r[round] = t / (double)reps;
    }
    qsort(r, PROBE_ROUNDS, sizeof r[0], probe_cmp);
    return r[PROBE_ROUNDS / 2];
}

#endif
