/*
 * fuzz_safetensors.c — the safetensors reader: the input as a file through sf_open;
 * when it opens, every tensor's floats read, every name and metadata key looked up
 * again, every shape formatted; then ck_load_weights loads the same file into the
 * four-parameter store of fuzz_run.h, which checks names and shapes against it.
 */
#include "aigc/safetensors.h"
#include "fuzz.h"
#include "fuzz_run.h"

static void fuzz_safetensors(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write(0, "w.safetensors", data, size);
    ag_error err;
    sf_file f;
    if (sf_open(&f, path, &err) == AG_OK) {
        char shape[256];
        volatile float sum = 0;
        for (int k = 0; k < f.n; k++) {
            const sf_tensor *t = &f.t[k];
            AG_ASSERT(sf_get(&f, t->name) == t);
            sf_shape_str(t, shape, sizeof shape);
            for (int64_t i = 0, n = sf_numel(t); i < n; i++) sum += t->data[i];
        }
        for (int k = 0; k < f.nmeta; k++) AG_ASSERT(sf_meta_get(&f, f.meta[k].key));
        sf_meta_get(&f, "format");
        (void)sum;
    }
    sf_close(&f);

    fuzz_run r;
    fuzz_run_make(&r);
    ck_load_weights(path, &r.ps, 0, "fuzz", &err);
    fuzz_run_free(&r);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_safetensors(data, size);
    return 0;
}
#endif
