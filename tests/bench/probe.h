/*
 * probe.h — what the benchmark probes share: the median time of a call, their options
 * and their models' widths.
 */
#ifndef AIGC_BENCH_PROBE_H
#define AIGC_BENCH_PROBE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PROBE_ROUNDS = 5 };

static inline double probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int probe_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds per call of fn(ctx): each of PROBE_ROUNDS rounds repeats it for at least
 * `least` seconds, and the median round is kept; other work on the machine makes a
 * single round noisy. */
static inline double probe_seconds(void (*fn)(void *), void *ctx, double least)
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

static inline void probe_usage(const char *usage)
{
    fprintf(stderr, "usage: %s\n", usage);
    exit(2);
}

/* The options every probe takes, -t THREADS -b BATCH -q SQUARE, each a whole number of
 * at least 1, into the values given (their defaults). Returns the index of the first
 * other argument; a bad option prints `usage` and exits 2. */
static inline int probe_options(int argc, char **argv, const char *usage, int *threads, int *batch, int *square)
{
    int argi = 1;
    for (; argi + 1 < argc && argv[argi][0] == '-'; argi += 2) {
        int v = atoi(argv[argi + 1]), *to = NULL;
        if (!strcmp(argv[argi], "-t")) to = threads;
        else if (!strcmp(argv[argi], "-b")) to = batch;
        else if (!strcmp(argv[argi], "-q")) to = square;
        if (v < 1 || !to) probe_usage(usage);
        *to = v;
    }
    return argi;
}

/* Checks the models argv[argi..] (NAME=W0,W1,...,Wn, MLPs joined by '+', each width 1 to
 * 65536; else `usage` and exit 2) and returns the floats of the largest operand: the
 * square product's, or a weight's or an activation's at batch. */
static inline size_t probe_biggest(int argi, int argc, char **argv, int batch, int square, const char *usage)
{
    size_t biggest = (size_t)square * square;
    for (int a = argi; a < argc; a++) {
        const char *eq = strchr(argv[a], '=');
        if (!eq) probe_usage(usage);
        for (const char *s = eq + 1; *s;) {
            char *end;
            long w = strtol(s, &end, 10);
            if (end == s || w < 1 || w > 1 << 16 || (*end && *end != ',' && *end != '+')) probe_usage(usage);
            size_t need = (size_t)w * (size_t)(w > batch ? w : batch);
            if (need > biggest) biggest = need;
            s = *end ? end + 1 : end;
        }
    }
    return biggest;
}

#endif
