/* progress.c — the progress line: a live bar on a terminal, throttled lines otherwise. */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

double pb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_time(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void pb_update(pb_bar *pr, const pg_program *p, int epoch, int64_t done, int64_t total, int64_t from,
               int64_t skipped, double epoch_start, int final)
{
    if (pr->off) return;
    double t = pb_now();
    /* A live bar redraws ten times a second; a log file gets a line every 10 s. */
    if (!final && t - pr->last < (pr->live ? 0.1 : 10.0)) return;
    /* An epoch of one batch would end with its first line written again. */
    if (final && !pr->live && pr->at_epoch == epoch && pr->at == done) return;
    pr->last = t;
    pr->at_epoch = epoch;
    pr->at = done;
    const sp_spec *s = p->spec;
    double rate = (double)(done - from) / fmax(t - epoch_start, 1e-9);
    char eta[32], line[512];
    fmt_time(eta, sizeof eta, (total - done) / fmax(rate, 1e-9));
    int k = 0;
    if (pr->live) {
        int width = 20, fill = (int)(width * done / (total ? total : 1));
        k += snprintf(line + k, sizeof line - (size_t)k, "\r\033[Kepoch %d/%d [", epoch, s->epochs);
        for (int j = 0; j < width; j++) line[k++] = j < fill ? '#' : '.';
        k += snprintf(line + k, sizeof line - (size_t)k, "] %3d%%", (int)(100 * done / (total ? total : 1)));
    } else {
        k += snprintf(line + k, sizeof line - (size_t)k, "epoch %d/%d %lld/%lld", epoch, s->epochs,
                      (long long)done, (long long)total);
    }
    k += snprintf(line + k, sizeof line - (size_t)k, " %.0f samples/s ETA %s", rate, eta);
    for (int j = 0; j < pr->shown && k < (int)sizeof line - 40; j++)
        k += snprintf(line + k, sizeof line - (size_t)k, " %s %.4g", p->log_names[j], pr->values[j]);
    if (skipped && k < (int)sizeof line - 40)
        snprintf(line + k, sizeof line - (size_t)k, " skipped %lld", (long long)skipped);
    fputs(line, stderr);
    if (!pr->live) fputc('\n', stderr);
    fflush(stderr);
}
