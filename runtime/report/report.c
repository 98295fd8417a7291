/* report.c — a run's report page: its curves, facts, quality, sample grids and spec. */
#include "aigc/report.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aigc/afile.h"
#include "commit.h"
#include "report_impl.h"

const char *rp_commit(void) { return AIGC_COMMIT; }

/* ---------------------------------------------------------------- facts -- */

int rp_write_facts(const char *dir, const rp_facts *f, const char *spec_text, size_t spec_len, ag_error *err)
{
    char path[4200];
    af_file a;
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    if (access(path, F_OK) != 0) {
        if (af_begin(&a, path, err) || af_write(&a, spec_text, spec_len, err) || af_commit(&a, err)) return AG_ERR;
    }
    snprintf(path, sizeof path, "%s/run.json", dir);
    if (af_begin(&a, path, err)) return AG_ERR;
    FILE *o = a.fp;
    fputs("{\"spec\":", o);
    rp_json_str(o, f->spec_name);
    fputs(",\"spec_path\":", o);
    rp_json_str(o, f->spec_path);
    fputs(",\"command\":", o);
    rp_json_str(o, f->command);
    fputs(",\"commit\":", o);
    rp_json_str(o, rp_commit());
    fputs(",\"version\":", o);
    rp_json_str(o, AIGC_VERSION);
    fputs(",\"backend\":", o);
    rp_json_str(o, f->backend);
    fprintf(o, ",\"threads\":%d,\"epoch\":%d,\"epochs\":%d,\"step\":%lld,\"wall_seconds\":%.3f", f->threads,
            f->epoch, f->epochs, (long long)f->step, f->seconds);
    fprintf(o, ",\"samples_per_second\":%.1f,\"peak_memory_mb\":%.1f,\"checkpoint\":", f->samples_per_second,
            f->peak_memory_mb);
    rp_json_str(o, f->checkpoint);
    fputs("}\n", o);
    return af_commit(&a, err);
}

/* ----------------------------------------------------------------- runs -- */

typedef struct run_view {
    const char *dir;
    int index;
    rp_series *series;
    int nseries, cap;
    double *epoch_steps;
    int nepochs;
} run_view;

static rp_series *series_for(run_view *r, const char *name, rp_skind kind)
{
    for (int k = 0; k < r->nseries; k++)
        if (r->series[k].kind == kind && !strcmp(r->series[k].name, name)) return &r->series[k];
    if (r->nseries == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->series = ag_xrealloc(r->series, (size_t)r->cap * sizeof *r->series);
    }
    rp_series *s = &r->series[r->nseries++];
    *s = (rp_series){.kind = kind, .run = r->index};
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* The row's bookkeeping, which no chart shows. */
static int bookkeeping(const char *key)
{
    static const char *const keys[] = {"kind", "epoch", "step", "seconds", "skipped"};
    for (size_t k = 0; k < AG_COUNTOF(keys); k++)
        if (!strcmp(key, keys[k])) return 1;
    return 0;
}

static void add_row(run_view *r, const rp_jobject *o)
{
    const rp_jfield *kind = rp_json_get(o, "kind"), *step = rp_json_get(o, "step");
    if (!kind || kind->kind != RP_JSTR || !step || step->kind != RP_JNUM) return;
    int epoch = !strcmp(kind->str, "epoch");
    if (!epoch && strcmp(kind->str, "step")) return;
    if (epoch) {
        r->epoch_steps = ag_xrealloc(r->epoch_steps, (size_t)(r->nepochs + 1) * sizeof *r->epoch_steps);
        r->epoch_steps[r->nepochs++] = step->num;
    }
    for (int k = 0; k < o->n; k++) {
        const rp_jfield *f = &o->f[k];
        if (bookkeeping(f->key) || (f->kind != RP_JNUM && f->kind != RP_JNULL)) continue;
        double v = f->kind == RP_JNUM ? f->num : NAN;
        if (!epoch)
            rp_series_add(series_for(r, f->key, RP_STEP), step->num, v);
        else if (!strncmp(f->key, "test_", 5))
            rp_series_add(series_for(r, f->key + 5, RP_EPOCH_TEST), step->num, v);
        else
            rp_series_add(series_for(r, strncmp(f->key, "train_", 6) ? f->key : f->key + 6, RP_EPOCH_TRAIN),
                          step->num, v);
    }
}

static int read_run(run_view *r, ag_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    FILE *f = fopen(path, "r");
    if (!f) return ag_errorf(err, (ag_loc){0}, "%s: cannot read the run's metrics: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    rp_jobject *o = ag_xmalloc(sizeof *o);
    /* A row cut short by a run still writing it is left out. */
    while (getline(&line, &cap, f) > 0)
        if (rp_json_parse(line, o)) add_row(r, o);
    free(o);
    free(line);
    fclose(f);
    for (int k = 0; k < r->nseries; k++) rp_series_cut(&r->series[k], RP_BUCKETS);
    return AG_OK;
}

static void free_run(run_view *r)
{
    for (int k = 0; k < r->nseries; k++) {
        free(r->series[k].x);
        free(r->series[k].y);
    }
    free(r->series);
    free(r->epoch_steps);
}

/* ---------------------------------------------------------------- page -- */

static const char style[] =
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1500px;padding:0 16px;color:#222}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}"
    ".sub{color:#666;margin:0 0 12px}.kinds{color:#555;font-size:13px}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:8px 24px}"
    "figure{margin:0}figcaption{font-weight:600;margin:6px 0 2px}figcaption label{font-weight:400;"
    "color:#555;font-size:12px;margin-left:10px}svg{width:100%;height:auto;display:block}"
    "svg.log,figure:has(input:checked) svg.lin{display:none}figure:has(input:checked) svg.log{display:block}"
    "svg text{font-size:11px;fill:#555}svg .ep{fill:#999;font-size:10px}.frame{fill:none;stroke:#bbb}"
    ".grid{stroke:#eee}.epoch{stroke:#ccc;stroke-dasharray:2 3}polyline{fill:none}"
    ".st{stroke-width:1;opacity:.45}.tr{stroke-width:1.8;stroke-dasharray:5 3}.te{stroke-width:2.2}"
    ".legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:12px;height:3px;"
    "margin-right:5px;vertical-align:middle}table{border-collapse:collapse;font-size:13px}"
    "td{padding:2px 12px 2px 0;vertical-align:top}td:first-child{color:#666}"
    ".grids img{image-rendering:pixelated;max-width:100%;width:448px;display:block;margin-top:6px}"
    ".grids img[hidden]{display:none}"
    ".grids input{width:448px;max-width:100%}pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px}";

/* Slides each grid group through its epochs; marks the page ready, with the time it
 * took since the navigation began, for its test and its figures. */
static const char script[] =
    "document.querySelectorAll('.grids').forEach(function(g){"
    "var imgs=g.querySelectorAll('img'),s=g.querySelector('input'),o=g.querySelector('output');"
    "function show(){imgs.forEach(function(im,i){im.hidden=i!=s.value;});"
    "o.textContent=imgs[s.value].dataset.epoch;}"
    "s.addEventListener('input',show);show();});"
    "document.body.dataset.ready='1';document.body.dataset.ms=Math.round(performance.now());";

static void table_of(FILE *f, const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in) return;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[n] = 0;
    rp_jobject *o = ag_xmalloc(sizeof *o);
    if (rp_json_parse(buf, o)) {
        fputs("<table>", f);
        for (int k = 0; k < o->n; k++) {
            const rp_jfield *x = &o->f[k];
            fputs("<tr><td>", f);
            rp_html(f, x->key, strlen(x->key));
            fputs("</td><td>", f);
            if (x->kind == RP_JNUM) fprintf(f, "%.6g", x->num);
            else if (x->kind == RP_JNULL) fputs("—", f);
            else rp_html(f, x->str, strlen(x->str));
            fputs("</td></tr>", f);
        }
        fputs("</table>\n", f);
    }
    free(o);
}

static void base64(FILE *f, const unsigned char *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t k = 0; k < n; k += 3) {
        unsigned v = (unsigned)p[k] << 16 | (k + 1 < n ? (unsigned)p[k + 1] << 8 : 0) | (k + 2 < n ? p[k + 2] : 0);
        fputc(abc[v >> 18 & 63], f);
        fputc(abc[v >> 12 & 63], f);
        fputc(k + 1 < n ? abc[v >> 6 & 63] : '=', f);
        fputc(k + 2 < n ? abc[v & 63] : '=', f);
    }
}

static int embed_png(FILE *f, const char *path, int epoch)
{
    FILE *in = fopen(path, "rb");
    if (!in) return 0;
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *buf = n > 0 ? ag_xmalloc((size_t)n) : NULL;
    int ok = buf && fread(buf, 1, (size_t)n, in) == (size_t)n;
    fclose(in);
    if (ok) {
        fprintf(f, "<img alt=\"epoch %d\" data-epoch=\"%d\" src=\"data:image/png;base64,", epoch, epoch);
        base64(f, buf, (size_t)n);
        fputs("\">", f);
    }
    free(buf);
    return ok;
}

/* A file a run writes each epoch: PREFIX-epoch-NNN.EXT. */
typedef struct epoch_file {
    char prefix[256], ext[8];
    int epoch;
    char name[512];
} epoch_file;

static int parse_epoch_file(const char *name, epoch_file *e)
{
    const char *at = strstr(name, "-epoch-");
    if (!at || (size_t)(at - name) >= sizeof e->prefix) return 0;
    char *end;
    long ep = strtol(at + 7, &end, 10);
    if (end == at + 7 || ep < 0 || ep > 1000000000 || (strcmp(end, ".png") && strcmp(end, ".txt"))) return 0;
    snprintf(e->prefix, sizeof e->prefix, "%.*s", (int)(at - name), name);
    snprintf(e->ext, sizeof e->ext, "%s", end + 1);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->epoch = (int)ep;
    return 1;
}

static int by_group_epoch(const void *a, const void *b)
{
    const epoch_file *x = a, *y = b;
    int c = strcmp(x->ext, y->ext);
    if (!c) c = strcmp(x->prefix, y->prefix);
    return c ? c : (x->epoch > y->epoch) - (x->epoch < y->epoch);
}

/* Grids beyond this many are thinned evenly, the first and last kept: a page of a
 * thousand epochs would weigh tens of megabytes. */
enum { MAX_GRIDS = 120 };

static void samples_of(FILE *f, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    epoch_file *files = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        epoch_file ef;
        if (!parse_epoch_file(e->d_name, &ef)) continue;
        files = ag_xrealloc(files, (size_t)(n + 1) * sizeof *files);
        files[n++] = ef;
    }
    closedir(d);
    if (n > 1) qsort(files, (size_t)n, sizeof *files, by_group_epoch);
    char path[4800];
    for (int lo = 0, hi = 0; lo < n; lo = hi) {
        while (hi < n && !strcmp(files[hi].prefix, files[lo].prefix) && !strcmp(files[hi].ext, files[lo].ext)) hi++;
        int count = hi - lo;
        fputs("<h3>", f);
        rp_html(f, files[lo].prefix, strlen(files[lo].prefix));
        fputs("</h3>", f);
        if (!strcmp(files[lo].ext, "txt")) {
            /* Texts: the last epoch's. */
            snprintf(path, sizeof path, "%s/%s", dir, files[hi - 1].name);
            FILE *in = fopen(path, "r");
            char buf[8192];
            size_t m = in ? fread(buf, 1, sizeof buf, in) : 0;
            if (in) fclose(in);
            fprintf(f, "<p class=\"sub\">epoch %d</p><pre>", files[hi - 1].epoch);
            rp_html(f, buf, m);
            fputs("</pre>", f);
            continue;
        }
        int shown = count < MAX_GRIDS ? count : MAX_GRIDS;
        fprintf(f, "<div class=\"grids\"><input type=\"range\" min=\"0\" max=\"%d\" value=\"%d\"> epoch "
                   "<output></output>",
                shown - 1, shown - 1);
        for (int k = 0; k < shown; k++) {
            const epoch_file *ef = &files[lo + (shown == 1 ? 0 : (int)((int64_t)k * (count - 1) / (shown - 1)))];
            snprintf(path, sizeof path, "%s/%s", dir, ef->name);
            embed_png(f, path, ef->epoch);
        }
        fputs("</div>\n", f);
    }
    free(files);
}

static void spec_of(FILE *f, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    FILE *in = fopen(path, "r");
    if (!in) return;
    fputs("<details><summary>spec</summary><pre>", f);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) rp_html(f, buf, n);
    fclose(in);
    fputs("</pre></details>\n", f);
}

/* The charts, one per logged value, in the order the values first appear. */
static void charts(FILE *f, run_view *runs, int nruns, const char *const *labels)
{
    int total = 0;
    for (int r = 0; r < nruns; r++) total += runs[r].nseries;
    rp_series **pick = ag_xmalloc((size_t)(total ? total : 1) * sizeof *pick);
    const char **names = ag_xmalloc((size_t)(total ? total : 1) * sizeof *names);
    int nnames = 0;
    for (int r = 0; r < nruns; r++)
        for (int k = 0; k < runs[r].nseries; k++) {
            int seen = 0;
            for (int j = 0; j < nnames && !seen; j++) seen = !strcmp(names[j], runs[r].series[k].name);
            if (!seen) names[nnames++] = runs[r].series[k].name;
        }
    fputs("<p class=\"kinds\">thin: each logged step; dashed: the epoch's training mean; solid with dots: the "
          "epoch's test mean. Faint lines mark the end of each epoch.</p><div class=\"charts\">\n", f);
    for (int j = 0; j < nnames; j++) {
        int n = 0;
        for (int r = 0; r < nruns; r++)
            for (int kind = RP_STEP; kind <= RP_EPOCH_TEST; kind++)
                for (int k = 0; k < runs[r].nseries; k++)
                    if ((int)runs[r].series[k].kind == kind && !strcmp(runs[r].series[k].name, names[j]))
                        pick[n++] = &runs[r].series[k];
        rp_chart c = {names[j], pick, n, runs[0].epoch_steps, runs[0].nepochs};
        rp_chart_svg(f, &c, labels);
    }
    fputs("</div>\n", f);
    free(pick);
    free(names);
}

static void page(FILE *f, run_view *runs, int nruns, const char *const *labels)
{
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>aigc-run: ", f);
    for (int r = 0; r < nruns; r++) {
        if (r) fputs(", ", f);
        rp_html(f, labels[r], strlen(labels[r]));
    }
    fprintf(f, "</title><style>%s</style></head><body>\n<h1>", style);
    for (int r = 0; r < nruns; r++) {
        if (r) fputs(" · ", f);
        rp_html(f, labels[r], strlen(labels[r]));
    }
    fprintf(f, "</h1><p class=\"sub\">aigc-run %s (%s)</p>\n<h2>Curves</h2>\n", AIGC_VERSION, rp_commit());
    charts(f, runs, nruns, labels);
    char path[4200];
    for (int r = 0; r < nruns; r++) {
        fputs("<h2>", f);
        rp_html(f, labels[r], strlen(labels[r]));
        fputs("</h2>\n", f);
        snprintf(path, sizeof path, "%s/run.json", runs[r].dir);
        table_of(f, path);
        snprintf(path, sizeof path, "%s/quality.json", runs[r].dir);
        if (access(path, F_OK) == 0) {
            fputs("<h3>eval --quality</h3>", f);
            table_of(f, path);
        }
        samples_of(f, runs[r].dir);
        spec_of(f, runs[r].dir);
    }
    fprintf(f, "<script>%s</script>\n</body></html>\n", script);
}

int rp_write(const char *const *dirs, int ndirs, const char *out, ag_error *err)
{
    AG_ASSERT(ndirs >= 1);
    run_view *runs = ag_xcalloc((size_t)ndirs, sizeof *runs);
    int rc = AG_OK;
    for (int r = 0; r < ndirs && rc == AG_OK; r++) {
        runs[r].dir = dirs[r];
        runs[r].index = r;
        rc = read_run(&runs[r], err);
    }
    if (rc == AG_OK) {
        af_file a;
        rc = af_begin(&a, out, err);
        if (rc == AG_OK) {
            page(a.fp, runs, ndirs, dirs);
            rc = af_commit(&a, err);
        }
    }
    for (int r = 0; r < ndirs; r++) free_run(&runs[r]);
    free(runs);
    return rc;
}
