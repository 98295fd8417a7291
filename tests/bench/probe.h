/*
 * probe.h — what the benchmark probes share: the median time of a call.
 */
#ifndef AIGC_BENCH_PROBE_H
#define AIGC_BENCH_PROBE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The options every probe takes, -t THREADS -b BATCH -q SQUARE, each a whole number of
 * at least 1, into the values given (their defaults). Returns the index of the first
 * other argument; a bad option prints `usage` and exits 2. */
static int probe_options(int argc, char **argv, const char *usage, int *threads, int *batch, int *square)
{
    int argi = 1;
    for (; argi + 1 < argc && argv[argi][0] == '-'; argi += 2) {
        int v = atoi(argv[argi + 1]), *to = NULL;
        if (!strcmp(argv[argi], "-t")) to = threads;
        else if (!strcmp(argv[argi], "-b")) to = batch;
        else if (!strcmp(argv[argi], "-q")) to = square;
        if (v < 1 || !to) {
            fprintf(stderr, "usage: %s\n", usage);
            exit(2);
        }
        *to = v;
    }
    return argi;
}

#endif
