/*
 * test_fuzz_regress.c — every saved fuzz input replayed through its harness's entry
 * point, without libFuzzer: the seeds of tests/fuzz/corpus/TARGET/ and the inputs that
 * once crashed, leaked or hung, kept in tests/fuzz/regress/TARGET/. Each must come back
 * (under `make check`, also free of ASan, UBSan and leak reports). See docs/fuzzing.md.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_REPLAY
#include "fuzz/fuzz_ckpt.c"
#include "fuzz/fuzz_expr.c"
#include "fuzz/fuzz_idx.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_spec.c"
#include "tap.h"

typedef struct target {
    const char *name;
    void (*run)(const uint8_t *data, size_t size);
} target;

static const target targets[] = {{"spec", fuzz_spec},
                                 {"expr", fuzz_expr},
                                 {"idx", fuzz_idx},
                                 {"safetensors", fuzz_safetensors},
                                 {"ckpt", fuzz_ckpt}};

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Replays every file of dir through t; returns how many there were. */
static int replay(const target *t, const char *dir)
{
    struct dirent **e;
    int n = scandir(dir, &e, NULL, by_name), files = 0;
    for (int k = 0; k < n; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e[k]->d_name);
        FILE *f = e[k]->d_name[0] == '.' ? NULL : fopen(path, "rb");
        free(e[k]);
        if (!f) continue;
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, got;
        do {
            if (len == cap) buf = ag_xrealloc(buf, cap = cap ? 2 * cap : 4096);
            got = fread(buf + len, 1, cap - len, f);
            len += got;
        } while (got);
        fclose(f);
        /* A crash ends the test here; prove reports it with the last file named. */
        t->run(buf, len);
        free(buf);
        ok(1, "%s", path);
        files++;
    }
    free(n > 0 ? e : NULL);
    return files;
}

int main(void)
{
    for (size_t k = 0; k < AG_COUNTOF(targets); k++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", targets[k].name);
        ok(replay(&targets[k], dir) > 0, "%s: the seed corpus is there", targets[k].name);
        snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", targets[k].name);
        replay(&targets[k], dir);
    }
    return tap_done();
}
