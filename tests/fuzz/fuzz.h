/*
 * fuzz.h — what the fuzz harnesses share (tests/fuzz/fuzz_*.c).
 *
 * Each harness defines one entry point, `static void fuzz_<target>(data, size)`, that
 * feeds a byte string to a reader of user input and frees everything it made. Built
 * with libFuzzer (`make fuzz`), the harness also defines LLVMFuzzerTestOneInput around
 * it; built with FUZZ_REPLAY defined, it does not, and tests/test_fuzz_regress.c
 * includes every harness to replay the saved inputs through the same entry points in
 * the ordinary test suite.
 *
 * The readers take paths, so the input is written to a file in a private temporary
 * directory first, made once per process and removed at exit.
 */
#ifndef AIGC_FUZZ_H
#define AIGC_FUZZ_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aigc/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_buf[64];

static inline void fuzz_rmdir(void)
{
    DIR *d = opendir(fuzz_dir_buf);
    if (!d) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", fuzz_dir_buf, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(fuzz_dir_buf);
}

/* The private directory, made on first use. */
static inline const char *fuzz_dir(void)
{
    if (!fuzz_dir_buf[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir_buf, sizeof fuzz_dir_buf, "%s/aigc-fuzz-XXXXXX",
                 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir_buf)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_rmdir);
        /* The cache of inflated data files (dcache.h) stays off: no input may leave a
         * file outside this directory. */
        setenv("AIGC_CACHE", "off", 1);
    }
    return fuzz_dir_buf;
}

/* dir/name, in a static buffer that stays valid until the next call with the same
 * slot (0..3). */
static inline const char *fuzz_path(int slot, const char *name)
{
    static char buf[4][512];
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", fuzz_dir(), name);
    return buf[slot];
}

/* Writes n bytes to dir/name and returns the path (slot as in fuzz_path). */
static inline const char *fuzz_write(int slot, const char *name, const void *data, size_t n)
{
    const char *path = fuzz_path(slot, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

/* The input as a NUL-terminated string (a NUL inside it ends the text early). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = ag_xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

#endif
