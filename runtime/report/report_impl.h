/*
 * report_impl.h — private to runtime/report: flat JSON objects read (json.c), curves
 * cut and drawn as SVG (chart.c).
 */
#ifndef AIGC_REPORT_IMPL_H
#define AIGC_REPORT_IMPL_H

#include <stdint.h>
#include <stdio.h>

#include "aigc/report.h"

/* ---- json.c: one object of the metrics' kind: keys to numbers, null, strings, and
 * anything else (an array) kept as its text. */
enum { RP_JSON_MAX = 128 };
typedef enum rp_jkind { RP_JNUM, RP_JNULL, RP_JSTR, RP_JRAW } rp_jkind;
typedef struct rp_jfield {
    char key[96];
    rp_jkind kind;
    double num;
    char str[256];          /* RP_JSTR unescaped, RP_JRAW as written (cut if longer) */
} rp_jfield;
typedef struct rp_jobject {
    int n;
    rp_jfield f[RP_JSON_MAX];
} rp_jobject;

/* Parses the object in text (a line, or a whole small file); 0 when it is not one. */
int rp_json_parse(const char *text, rp_jobject *o);
const rp_jfield *rp_json_get(const rp_jobject *o, const char *key);
/* Writes s as a JSON string, quotes included. */
void rp_json_str(FILE *f, const char *s);
/* Writes s with &, <, > and " escaped for HTML. */
void rp_html(FILE *f, const char *s, size_t n);

/* ---- chart.c */
typedef enum rp_skind { RP_STEP, RP_EPOCH_TRAIN, RP_EPOCH_TEST } rp_skind;
typedef struct rp_series {
    char name[96];          /* the logged value, without train_ or test_ */
    rp_skind kind;
    int run;                /* its run's index: its colour */
    int64_t n, cap;
    double *x, *y;          /* step, value; NaN for null */
} rp_series;

/* Adds a point, growing the arrays. */
void rp_series_add(rp_series *s, double x, double y);
/* Cuts s to at most 2 * buckets points: per bucket of consecutive points, the smallest
 * and largest finite values, in their order. */
void rp_series_cut(rp_series *s, int buckets);

typedef struct rp_chart {
    const char *name;
    rp_series *const *series;
    int nseries;
    const double *epoch_steps; /* the steps where epochs ended, of the first run */
    int nepochs;
} rp_chart;

/* The chart as two SVGs in a figure, the linear one and the log one, the one the
 * values suit shown first. */
void rp_chart_svg(FILE *f, const rp_chart *c, const char *const *run_labels);

#endif
