/*
 * tmpdir.h — a scratch directory for the test programs that write files: tmp_open
 * makes /tmp/aigc-test-TAG-XXXXXX (or ends the program with exit code 2 and mkdtemp's
 * reason, which prove reports as a failure), in_tmp names a file in it, tmp_close
 * removes it with everything in it.
 */
#ifndef AIGC_TMPDIR_H
#define AIGC_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static char tmpdir[64];

static inline void tmp_open(const char *tag)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/aigc-test-%s-XXXXXX", tag);
    if (mkdtemp(tmpdir)) return;
    perror("mkdtemp");
    exit(2);
}

/* The path of name in the directory; the last four stay valid, so a call can take
 * several. */
static inline const char *in_tmp(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static inline int tmp_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void tmp_close(void) { nftw(tmpdir, tmp_remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

#endif
