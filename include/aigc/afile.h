/*
 * afile.h — a file replaced whole or not at all (prefix af_): written under PATH.tmp,
 * flushed to disk, renamed over PATH, and the directory synced. A crash, a full disk or
 * a failed write at any point leaves the previous PATH as it was and no temporary file
 * behind. Every checkpoint, sample grid and text the runtime writes goes through it.
 *
 *     af_file f;
 *     if (af_begin(&f, path, err) != AG_OK) return AG_ERR;
 *     if (af_write(&f, bytes, n, err) != AG_OK) return AG_ERR;   // the file is gone
 *     return af_commit(&f, err);
 *
 * Writing to f.fp directly (fprintf, a library's stdio writer) works too: af_finish
 * reports a failed write then, with the reason the stdio call left in errno.
 *
 * Every failure is reported as "PATH: cannot write: REASON" (strerror's, or the one the
 * caller gives af_fail).
 */
#ifndef AIGC_AFILE_H
#define AIGC_AFILE_H

#include <stdio.h>

#include "aigc/base.h"

typedef struct af_file {
    FILE *fp;
    char path[4096], tmp[4100];
} af_file;

/* Opens PATH.tmp for writing. */
int af_begin(af_file *f, const char *path, ag_error *err);
/* n bytes; on a failure the temporary file is removed (no af_abort needed). */
int af_write(af_file *f, const void *p, size_t n, ag_error *err);

/* The temporary file complete and on disk (flushed, fsynced, closed), not yet renamed:
 * for a caller that must write another file between the two (ck_save). */
int af_finish(af_file *f, ag_error *err);
/* Renames it over PATH and syncs the directory. */
int af_rename(af_file *f, ag_error *err);
/* Both. Each of these removes the temporary file when it fails. */
int af_commit(af_file *f, ag_error *err);

/* Closes and removes the temporary file, for a failure the caller reports itself. */
void af_abort(af_file *f);
/* af_abort, and the message "PATH: cannot write: REASON"; returns AG_ERR. */
int af_fail(af_file *f, const char *reason, ag_error *err);

#endif
