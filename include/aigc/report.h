/*
 * report.h — a run's report: one self-contained HTML page (prefix rp_).
 *
 * Training rewrites DIR/report.html after every epoch, so it can be opened mid-run;
 * `aigc-run report DIR [DIR ...]` builds it again, overlaying several runs. The page
 * needs no network and no file beside it: its charts are SVG drawn here, its images
 * are embedded, and its few lines of script (the sample slider) are its own. It shows
 *
 *   - a chart per logged value: the training steps, the epochs' training means and
 *     test means against the step, epochs marked; a log scale where the values span
 *     two decades or more (a switch shows the other scale); several runs overlaid
 *   - per run: its facts (DIR/run.json, which training writes), the `eval --quality`
 *     figures when they exist (DIR/quality.json), the sample grids per epoch behind a
 *     slider, the last text samples, and the spec (DIR/spec.yaml)
 *
 * Curves of many steps are cut to RP_BUCKETS buckets, each keeping its smallest and
 * largest value in their order, so that a page of 100,000 steps stays small and a spike
 * is still seen.
 *
 *     const char *dirs[] = {"runs/gan", "runs/gan-lr3"};
 *     if (rp_write(dirs, 2, "compare.html", &err)) ...
 */
#ifndef AIGC_REPORT_H
#define AIGC_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "aigc/base.h"

enum { RP_BUCKETS = 500 };

/* What a run is that its metrics do not say, for DIR/run.json. */
typedef struct rp_facts {
    const char *spec_name, *spec_path;
    const char *command;        /* the command line, as typed */
    const char *backend;        /* the compute library */
    int threads;
    int epoch, epochs;
    int64_t step;
    double seconds;             /* wall time of this process's run so far */
    double samples_per_second;  /* training samples over the time spent on them */
    double peak_memory_mb;      /* the process's peak resident memory */
    const char *checkpoint;     /* the checkpoint's weights file, in the run directory */
} rp_facts;

/* Writes DIR/run.json, and DIR/spec.yaml (the spec's text) when it is not there yet. */
int rp_write_facts(const char *dir, const rp_facts *f, const char *spec_text, size_t spec_len, ag_error *err);

/* The report of the runs in dirs into out (replaced whole): a run directory needs its
 * metrics.jsonl; everything else shows when it is there. */
int rp_write(const char *const *dirs, int ndirs, const char *out, ag_error *err);

/* The build's commit (git describe), or "unknown" outside a git checkout. */
const char *rp_commit(void);

#endif
