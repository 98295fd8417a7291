/*
 * fuzz_ckpt.c — the checkpoint loader, ck_load, into the run of fuzz_run.h.
 *
 * One input holds both files of a checkpoint:
 *
 *   u8 flags, u32 n (little-endian), n bytes of last.safetensors, the rest last.state
 *
 * (n larger than what follows takes all of it). A state file carries a CRC32 of
 * itself and one of the weights it was saved with, which random mutations almost
 * never keep right; so the flags let the harness repair them after mutation and reach
 * the payload's records: bit 0 sets the state file's length field and its trailing
 * CRC, bit 1 the value of the record weights_crc (when the weights file matches the
 * store), bit 2 loads with no spec hash (any spec accepted).
 */
#include <zlib.h>

#include "aigc/safetensors.h"
#include "fuzz.h"
#include "fuzz_run.h"

static void fuzz_put_u32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k));
}

static uint32_t fuzz_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Where the values of the state file's record named name start, or 0 when it has none
 * before a malformed one. The records follow the frame's 20 bytes, each a u32 name
 * length, the name, a u32 type, a u64 count and the values (include/aigc/ckpt.h); the
 * last 4 bytes are the CRC. */
static size_t fuzz_record(const uint8_t *s, size_t n, const char *name)
{
    static const size_t size[8] = {0, 1, 4, 4, 8, 8, 4, 8};
    const size_t end = n - 4, len = strlen(name);
    for (size_t at = 20; n >= 24 && end - at >= 16;) {
        size_t nlen = fuzz_get_u32(s + at);
        if (end - at - 16 < nlen) return 0;
        size_t v = at + 16 + nlen;
        uint32_t type = fuzz_get_u32(s + at + 4 + nlen);
        uint64_t count = fuzz_get_u32(s + at + 8 + nlen) | (uint64_t)fuzz_get_u32(s + at + 12 + nlen) << 32;
        if (nlen == len && memcmp(s + at + 4, name, len) == 0) return v;
        if (type >= 8 || !size[type] || count > (end - v) / size[type]) return 0;
        at = v + (size_t)count * size[type];
    }
    return 0;
}

/* Into *crc, the CRC ck_save records for the weights file at path: its floats in the
 * store's order. 0 when the file does not open or lacks one of the store's tensors. */
static int fuzz_weights_crc(const char *path, const ag_params *ps, uint32_t *crc)
{
    sf_file f;
    ag_error err;
    if (sf_open(&f, path, &err)) return 0;
    uLong c = crc32(0, NULL, 0);
    int found = 1;
    for (int k = 0; k < ps->n && found; k++) {
        const sf_tensor *t = sf_get(&f, ps->p[k].name);
        found = t && sf_numel(t) == ag_numel(&ps->p[k].shape);
        if (found) c = crc32_z(c, (const Bytef *)t->data, (size_t)sf_numel(t) * sizeof(float));
    }
    sf_close(&f);
    *crc = (uint32_t)c;
    return found;
}

static void fuzz_ckpt(const uint8_t *data, size_t size)
{
    if (size < 5) return;
    unsigned flags = data[0];
    size_t n = fuzz_get_u32(data + 1);
    data += 5, size -= 5;
    if (n > size) n = size;
    const char *wpath = fuzz_write(0, "last.safetensors", data, n);

    fuzz_run r;
    fuzz_run_make(&r);
    size_t sn = size - n;
    uint8_t *state = ag_xmalloc(sn ? sn : 1);
    memcpy(state, data + n, sn);
    uint32_t wcrc;
    if ((flags & 2) && sn >= 24 && fuzz_weights_crc(wpath, &r.ps, &wcrc)) {
        size_t at = fuzz_record(state, sn, "weights_crc");
        if (at && sn - 4 - at >= 4) fuzz_put_u32(state + at, wcrc);
    }
    if ((flags & 1) && sn >= 24) {
        uint64_t len = sn - 24;
        for (int k = 0; k < 8; k++) state[12 + k] = (uint8_t)(len >> (8 * k));
        fuzz_put_u32(state + sn - 4, (uint32_t)crc32_z(crc32(0, NULL, 0), state, sn - 4));
    }
    fuzz_write(1, "last.state", state, sn);
    free(state);

    if (flags & 4) r.ck.spec_hash = NULL;
    ag_error err;
    ck_load(fuzz_dir(), "last", &r.ck, &err);
    fuzz_run_free(&r);
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ckpt(data, size);
    return 0;
}
#endif
