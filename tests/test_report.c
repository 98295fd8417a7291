/* test_report.c — the report's pieces: the metrics rows read back, and curves cut to
 * buckets that keep their extremes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/report/report_impl.h"
#include "tap.h"

static void json_rows(void)
{
    rp_jobject *o = malloc(sizeof *o);
    ok(rp_json_parse("{\"kind\":\"step\",\"epoch\":1,\"step\":20,\"seconds\":0.5,\"loss_D\":1.25e-3,\"loss_G\":null}\n", o),
       "a metrics row parses");
    const rp_jfield *f = rp_json_get(o, "kind");
    ok(f && f->kind == RP_JSTR && !strcmp(f->str, "step"), "its kind is the string step");
    f = rp_json_get(o, "loss_D");
    ok(f && f->kind == RP_JNUM && f->num == 1.25e-3, "a number keeps its value");
    f = rp_json_get(o, "loss_G");
    ok(f && f->kind == RP_JNULL, "null (a NaN the run could not write) is null");
    ok(rp_json_parse("{ \"a\" : \"q\\\"u\\\\o\\nte\" , \"hist\":[1,2,[3]],\"b\":2}", o) && o->n == 3,
       "escapes, spaces and an array");
    f = rp_json_get(o, "a");
    ok(f && !strcmp(f->str, "q\"u\\o\nte"), "a string is unescaped");
    f = rp_json_get(o, "hist");
    ok(f && f->kind == RP_JRAW && !strcmp(f->str, "[1,2,[3]]"), "an array is kept as written");
    ok(rp_json_get(o, "b") && rp_json_get(o, "b")->num == 2, "and the value after it is read");
    ok(!rp_json_parse("{\"kind\":\"step\",\"step\":2", o), "a row cut short is not an object");
    ok(!rp_json_parse("[1]", o) && !rp_json_parse("", o), "nor is an array or nothing");
    ok(rp_json_parse("{}", o) && o->n == 0, "{} is an empty object");
    free(o);
}

static void series_cut(void)
{
    rp_series s = {0};
    for (int k = 0; k < 100000; k++) rp_series_add(&s, k, k == 77777 ? 1e6 : k == 31 ? -5 : 1.0 + 1.0 / (k + 1));
    rp_series_cut(&s, 500);
    ok(s.n <= 1000 && s.n >= 500, "100,000 points cut to at most 1,000 (%lld)", (long long)s.n);
    double hi = -INFINITY, lo = INFINITY;
    int ordered = 1;
    for (int64_t k = 0; k < s.n; k++) {
        hi = fmax(hi, s.y[k]), lo = fmin(lo, s.y[k]);
        if (k && s.x[k] <= s.x[k - 1]) ordered = 0;
    }
    ok(hi == 1e6, "the spike survives (%g)", hi);
    ok(lo == -5, "and the dip (%g)", lo);
    ok(ordered, "the points stay in their order");
    free(s.x);
    free(s.y);

    rp_series t = {0};
    for (int k = 0; k < 1000; k++) rp_series_add(&t, k, k);
    rp_series_cut(&t, 500);
    ok(t.n == 1000, "a curve of 2 points per bucket or fewer is left whole");
    free(t.x);
    free(t.y);

    rp_series g = {0};
    for (int k = 0; k < 5000; k++) rp_series_add(&g, k, k >= 1000 && k < 2000 ? NAN : 1);
    rp_series_cut(&g, 100);
    int gaps = 0;
    for (int64_t k = 0; k < g.n; k++) gaps += isnan(g.y[k]);
    ok(gaps > 0, "buckets of NaN only stay gaps in the line");
    free(g.x);
    free(g.y);
}

int main(void)
{
    json_rows();
    series_cut();
    return tap_done();
}
