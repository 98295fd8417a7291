/* rundir.c — the run directory: made, locked, pruned, its metrics resumed. */
#include "rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int rd_make(const char *path, ag_error *err) { return ag_mkdirs_or_error(path, "the run directory", err); }

/* A second run training in the same directory (the same command typed in two
 * terminals) would interleave its metrics and checkpoints with the first's. The lock
 * is the kernel's, on the directory itself, so a run that dies leaves none behind; a
 * file system without locks runs unlocked. */
int rd_lock(const char *dir, int *fd, ag_error *err)
{
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0) return ag_errorf(err, (ag_loc){0}, "%s: cannot open the run directory: %s", dir, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) return AG_OK;
    close(*fd);
    *fd = -1;
    return ag_errorf(err, (ag_loc){0},
                     "%s: another aigc-run is training in this directory; wait for it to end, or give --out "
                     "another one",
                     dir);
}

/* A checkpoint's temporary file: (last|step-DIGITS).(safetensors|state).tmp */
static int is_checkpoint_tmp(const struct dirent *e)
{
    static const char *const exts[] = {".safetensors.tmp", ".state.tmp"};
    const char *s = e->d_name;
    if (!strncmp(s, "last", 4)) {
        s += 4;
    } else if (!strncmp(s, "step-", 5) && s[5] >= '0' && s[5] <= '9') {
        s += 5;
        while (*s >= '0' && *s <= '9') s++;
    } else {
        return 0;
    }
    for (size_t k = 0; k < AG_COUNTOF(exts); k++)
        if (!strcmp(s, exts[k])) return 1;
    return 0;
}

void rd_clean(const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, is_checkpoint_tmp, alphasort);
    for (int k = 0; k < n; k++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, list[k]->d_name);
        unlink(path);
        free(list[k]);
    }
    if (n >= 0) free(list);
}

static int is_snapshot(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return !strncmp(e->d_name, "step-", 5) && n > 6 && !strcmp(e->d_name + n - 6, ".state");
}

void rd_prune(const char *dir, int keep)
{
    /* Zero-padded step numbers sort by name; the oldest go first. */
    struct dirent **list;
    int n = scandir(dir, &list, is_snapshot, alphasort);
    for (int k = 0; k < n; k++) {
        if (k < n - keep) {
            char path[4400];
            size_t len = strlen(list[k]->d_name) - 6;
            snprintf(path, sizeof path, "%s/%.*s.state", dir, (int)len, list[k]->d_name);
            unlink(path);
            snprintf(path, sizeof path, "%s/%.*s.safetensors", dir, (int)len, list[k]->d_name);
            unlink(path);
        }
        free(list[k]);
    }
    if (n >= 0) free(list);
}

/* The checkpoint's own run's file is cut there: rows written after it belong to the
 * lost part of the run. Resuming into another directory, that much of the checkpoint's
 * run is copied (none when its metrics are gone), so that an earlier file there is
 * replaced whole, never cut at a foreign offset. */
int rd_resume_metrics(const char *resume_dir, const char *dir, const char *metrics_path, int64_t bytes,
                      ag_error *err)
{
    struct stat a, b;
    if (stat(resume_dir, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        if (truncate(metrics_path, bytes) != 0)
            return ag_errorf(err, (ag_loc){0}, "%s: cannot trim to the checkpoint: %s", metrics_path,
                             strerror(errno));
        return AG_OK;
    }
    char from[4200];
    snprintf(from, sizeof from, "%s/metrics.jsonl", resume_dir);
    FILE *in = fopen(from, "rb"), *out = fopen(metrics_path, "wb");
    int64_t left = in ? bytes : 0;
    char buf[65536];
    while (out && left > 0) {
        size_t n = fread(buf, 1, left < (int64_t)sizeof buf ? (size_t)left : sizeof buf, in);
        if (n == 0 || fwrite(buf, 1, n, out) != n) break;
        left -= (int64_t)n;
    }
    int bad = !out || ferror(out);
    if (in) fclose(in);
    if (out && fclose(out)) bad = 1;
    if (bad) return ag_errorf(err, (ag_loc){0}, "%s: cannot write the metrics: %s", metrics_path, strerror(errno));
    if (left > 0)
        return ag_errorf(err, (ag_loc){0}, "%s: shorter than the %lld bytes its checkpoint has seen", from,
                         (long long)bytes);
    return AG_OK;
}
