/*
 * make_seeds.c — writes the binary seed inputs of tests/fuzz/corpus/ (the IDX,
 * safetensors and checkpoint ones; the spec and expression seeds are text, kept as
 * written). Run from the top of the tree after `make`:
 *
 *     cc -std=c11 -D_GNU_SOURCE -Iinclude tests/fuzz/make_seeds.c build/libaigc.a \
 *         $(pkg-config --libs openblas yaml-0.1 lua5.4 zlib libpng) -lm -lpthread \
 *         -o /tmp/make_seeds && /tmp/make_seeds tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "aigc/safetensors.h"
#include "fuzz.h"
#include "fuzz_run.h"

static const char *out;

static void put(const char *target, const char *name, const void *a, size_t na, const void *b,
                size_t nb)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", out, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = ag_xmalloc(*n ? *n : 1);
    if (fread(b, 1, *n, f) != *n) exit(1);
    fclose(f);
    return b;
}

/* An IDX file of unsigned bytes: flag byte 0 (raw) or 1 (compress), then the file. */
static void idx_seed(const char *name, int flag, const uint32_t *dims, int ndims)
{
    unsigned char buf[512];
    size_t n = 0;
    buf[n++] = (unsigned char)flag;
    buf[n++] = 0, buf[n++] = 0, buf[n++] = 0x08, buf[n++] = (unsigned char)ndims;
    size_t count = 1;
    for (int d = 0; d < ndims; d++) {
        for (int k = 3; k >= 0; k--) buf[n++] = (unsigned char)(dims[d] >> (8 * k));
        count *= dims[d];
    }
    for (size_t k = 0; k < count; k++) buf[n++] = (unsigned char)(k * 37);
    put("idx", name, buf, n, NULL, 0);
}

static void idx_seeds(void)
{
    const uint32_t images[] = {3, 4, 4}, labels[] = {5}, rgb[] = {2, 2, 2, 3};
    idx_seed("images-raw", 0, images, 3);
    idx_seed("images-gz", 1, images, 3);
    idx_seed("labels-raw", 0, labels, 1);
    idx_seed("labels-gz", 1, labels, 1);
    idx_seed("four-dims-gz", 1, rgb, 4);
    /* A gzip file written as it is: the raw path meets the gzip magic. */
    unsigned char raw[64] = {0, 0, 0x08, 1, 0, 0, 0, 4, 7, 8, 9, 10};
    unsigned char gz[128];
    uLongf gn = sizeof gz - 1;
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
    z.next_in = raw, z.avail_in = 12, z.next_out = gz + 1, z.avail_out = (uInt)gn;
    deflate(&z, Z_FINISH);
    gn = z.total_out;
    deflateEnd(&z);
    gz[0] = 0;
    put("idx", "gzip-as-raw", gz, gn + 1, NULL, 0);
}

static void safetensors_seeds(const fuzz_run *r)
{
    float v[12];
    for (int k = 0; k < 12; k++) v[k] = (float)k / 4;
    ag_error err;
    sf_tensor t[4];
    for (int k = 0; k < r->ps.n; k++) {
        const ag_parameter *p = &r->ps.p[k];
        t[k] = (sf_tensor){.name = p->name, .ndim = p->shape.ndim, .data = v};
        for (int d = 0; d < p->shape.ndim; d++) t[k].shape[d] = p->shape.d[d];
    }
    sf_meta m[] = {{"format", "pt"}, {"spec", "fuzz"}};
    const char *tmp = fuzz_path(0, "s.safetensors");
    size_t n;
    unsigned char *b;
    /* The store's four tensors, as ck_load_weights wants them. */
    if (sf_write(tmp, t, 4, m, 2, &err)) exit(1);
    b = slurp(tmp, &n);
    put("safetensors", "store", b, n, NULL, 0);
    free(b);
    /* A scalar, an empty tensor, a 3-d one; no metadata. */
    sf_tensor odd[] = {{.name = "s", .ndim = 0, .data = v},
                       {.name = "e", .ndim = 2, .shape = {0, 3}, .data = v},
                       {.name = "x.y", .ndim = 3, .shape = {1, 2, 3}, .data = v}};
    if (sf_write(tmp, odd, 3, NULL, 0, &err)) exit(1);
    b = slurp(tmp, &n);
    put("safetensors", "shapes", b, n, NULL, 0);
    free(b);
    const char hdr[] = "{\"__metadata__\":{\"a\\u00e9\\n\":\"\\\"b\\\\\"},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    unsigned char len8[8] = {sizeof hdr - 1};
    unsigned char four[4] = {0, 0, 128, 63};
    unsigned char file[256];
    memcpy(file, len8, 8);
    memcpy(file + 8, hdr, sizeof hdr - 1);
    memcpy(file + 8 + sizeof hdr - 1, four, 4);
    put("safetensors", "escapes", file, 8 + sizeof hdr - 1 + 4, NULL, 0);
}

static void ckpt_seeds(fuzz_run *r)
{
    for (int k = 0; k < r->ps.n; k++)
        for (int64_t i = 0; i < ag_numel(&r->ps.p[k].shape); i++) r->ps.p[k].data[i] = (float)i;
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < opt_state_floats(&r->opt[k]); i++) r->opt[k].state[i] = 0.5f;
    r->ck.epoch = 2, r->ck.step = 17, r->ck.cursor = 3;
    r->sum[0] = 0.25, r->sum[1] = -3, r->count = 5;
    ag_error err;
    if (ck_save(fuzz_dir(), "seed", &r->ck, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    size_t nw, ns;
    unsigned char *w = slurp(fuzz_path(0, "seed.safetensors"), &nw);
    unsigned char *s = slurp(fuzz_path(1, "seed.state"), &ns);
    unsigned char *both = ag_xmalloc(5 + nw);
    const unsigned flags[] = {0, 3, 7};
    for (size_t k = 0; k < AG_COUNTOF(flags); k++) {
        both[0] = (unsigned char)flags[k];
        for (int b = 0; b < 4; b++) both[1 + b] = (unsigned char)(nw >> (8 * b));
        memcpy(both + 5, w, nw);
        char name[32];
        snprintf(name, sizeof name, "saved-flags%u", flags[k]);
        put("ckpt", name, both, 5 + nw, s, ns);
    }
    free(both);
    free(w);
    free(s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR (tests/fuzz/corpus)\n");
        return 2;
    }
    out = argv[1];
    fuzz_run r;
    fuzz_run_make(&r);
    idx_seeds();
    safetensors_seeds(&r);
    ckpt_seeds(&r);
    fuzz_run_free(&r);
    return 0;
}
