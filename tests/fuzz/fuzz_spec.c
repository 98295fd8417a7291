/*
 * fuzz_spec.c — the spec loader end to end: the input as a YAML file through sp_load
 * (libyaml, the node tree, every section's schema, every expression), then, when it
 * loads, pg_build for 28x28 images in 10 classes (models, shapes, the step program,
 * the sample sections) within a memory limit of 1 GB; each error message annotated
 * with its source line, as the command line prints it. A first line "#set KEY=VALUE"
 * (a YAML comment) is also given as a --set override, so that the override's path
 * walk and its flow values are fuzzed with the spec they change.
 */
#include <string.h>

#include "aigc/program.h"
#include "aigc/spec.h"
#include "fuzz.h"

static void fuzz_spec(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write(0, "spec.yaml", data, size);
    char set[4096];
    size_t n = 0;
    if (size > 5 && memcmp(data, "#set ", 5) == 0)
        while (5 + n < size && n + 1 < sizeof set && data[5 + n] != '\n' && data[5 + n]) {
            set[n] = (char)data[5 + n];
            n++;
        }
    set[n] = 0;
    sp_set over = {.text = set};
    sp_spec s;
    ag_error err;
    if (sp_load(&s, path, &over, n > 0, &err) == AG_OK) {
        /* As the command line's --max-memory, below libFuzzer's 2 GB: a spec that
         * plans more is refused before anything is allocated. */
        s.max_memory = (int64_t)1 << 30;
        pg_program p;
        if (pg_build(&p, &s, 28, 28, 10, &err) != AG_OK) yt_annotate(&err, &s.doc);
        pg_free(&p); /* after a failed build too */
    } else {
        yt_annotate(&err, &s.doc);
    }
    sp_free(&s);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_spec(data, size);
    return 0;
}
#endif
