/*
 * test_ckpt.c — checkpoints: a save and load that restores weights, optimizer state,
 * generators and data order bit for bit, and resumes to the same next step; each
 * mismatch between a checkpoint and a run refused with its exact message and nothing
 * changed; corrupt and mixed state files refused; a failed save leaving the previous
 * checkpoint whole. The state file's records as ckpt.h lays them out: the caller's
 * fields round trip by name, a record missing, twice, of another type or unknown is
 * met as the header says, and files of format 1 and of a newer format are refused.
 *
 * PyTorch interop, through the fixtures of scripts/golden/pytorch_generator.py: the
 * seed GAN's generator, saved by PyTorch, loads into a store and computes on the
 * engine what it computed in PyTorch; and a small checkpoint that ck_save writes has
 * the bytes of the format and stays the file the script checks in PyTorch. Run as
 * `AIGC_WRITE_GOLDEN=1 ./build/tests/test_ckpt.t` to rewrite that fixture.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aigc/ckpt.h"
#include "aigc/safetensors.h"
#include "tap.h"
#include "tmpdir.h"

#define GOLDEN "tests/golden/generator/"

/* ---- files ---------------------------------------------------------------------- */

static unsigned char *read_bytes(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = ag_xmalloc(*n);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n) {
        ok(0, "write %s", path);
        exit(1);
    }
    fclose(f);
}

static int same_file(const char *path, const unsigned char *want, size_t n)
{
    size_t got_n;
    unsigned char *got = read_bytes(path, &got_n);
    int same = got && got_n == n && memcmp(got, want, n) == 0;
    free(got);
    return same;
}

/* ---- a small run to save ---------------------------------------------------------- */

/* How a run differs from the one saved; each field breaks one thing. */
typedef struct variant {
    int g_rows; /* G.0.weight is [g_rows, 3] */
    int extra_param; /* adds D.2.bias */
    int no_d_bias; /* leaves D.0.bias out */
    opt_kind d_kind;
    int amsgrad; /* of opt_G */
    int noptims; /* 2, or 1: opt_G alone */
    const char *d_name;
    int nrngs;
    int norder;
    const char *hash;
    int nsum; /* the caller's field run.sum holds this many */
    ck_type count_type; /* of the caller's field run.count */
    int more; /* adds a caller's field run.more */
} variant;

static const variant base = {4, 0, 0, OPT_SGD, 0, 2, "opt_D", 3, 10, "hash-1", 3, CK_I64, 0};

enum { MAX_SUM = 4 };

enum { MAX_ORDER = 16 };

typedef struct run {
    ag_params ps;
    opt_optimizer opt[2];
    const char *names[2];
    rng r[3];
    rng *rp[3];
    int32_t order[MAX_ORDER];
    double sum[MAX_SUM];
    int64_t count, more;
    ck_field fields[3];
    ck_run ck;
} run;

static void run_make(run *s, const variant *v)
{
    memset(s, 0, sizeof *s);
    ag_params_init(&s->ps);
    ag_loc at = {0};
    int g[2], d[3], nd = 0;
    g[0] = ag_params_add(&s->ps, "G.0.weight", ag_shape2(v->g_rows, 3), at);
    g[1] = ag_params_add(&s->ps, "G.0.bias", ag_shape1(v->g_rows), at);
    d[nd++] = ag_params_add(&s->ps, "D.0.weight", ag_shape2(1, 5), at);
    if (!v->no_d_bias) d[nd++] = ag_params_add(&s->ps, "D.0.bias", ag_shape1(1), at);
    if (v->extra_param) d[nd++] = ag_params_add(&s->ps, "D.2.bias", ag_shape1(1), at);
    ag_params_alloc(&s->ps);

    ag_error err = {{0}};
    opt_hyper hg = opt_defaults(OPT_ADAM), hd = opt_defaults(v->d_kind);
    hg.amsgrad = v->amsgrad;
    hd.momentum = v->d_kind == OPT_SGD ? 0.9 : hd.momentum;
    opt_group_spec gg[2] = {{g, 1, 1e-3, 0}, {g + 1, 1, 2e-3, 0}}, gd = {d, nd, 0.1, 0};
    if (opt_init(&s->opt[0], OPT_ADAM, &hg, &s->ps, gg, 2, at, &err) ||
        (v->noptims > 1 && opt_init(&s->opt[1], v->d_kind, &hd, &s->ps, &gd, 1, at, &err))) {
        ok(0, "optimizers: %s", err.msg);
        exit(1);
    }
    s->names[0] = "opt_G";
    s->names[1] = v->d_name;
    for (int k = 0; k < 3; k++) s->rp[k] = &s->r[k];
    s->fields[0] = (ck_field){"sum", CK_F64, v->nsum, s->sum, 0};
    s->fields[1] = (ck_field){"count", v->count_type, 1, &s->count, 0};
    s->fields[2] = (ck_field){"more", CK_I64, 1, &s->more, 0};
    s->ck = (ck_run){.spec_name = "tiny-gan",
                     .spec_hash = v->hash,
                     .data = "4x3 2",
                     .vocab = "0a20",
                     .params = &s->ps,
                     .noptims = v->noptims,
                     .optims = s->opt,
                     .optim_names = s->names,
                     .nrngs = v->nrngs,
                     .rngs = s->rp,
                     .order = s->order,
                     .norder = v->norder,
                     .fields = s->fields,
                     .nfields = v->more ? 3 : 2};
}

static void run_free(run *s)
{
    for (int k = 0; k < s->ck.noptims; k++) opt_free(&s->opt[k]);
    ag_params_free(&s->ps);
}

/* Values that depend on seed everywhere a checkpoint looks: weights, optimizer
 * moments and steps (three updates from random gradients), learning rates,
 * generators (one with a spare normal), the order, the counters. */
static void run_scramble(run *s, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed);
    rng_fill_normal(&r, s->ps.data, s->ps.total, 0, 1);
    for (int step = 0; step < 3; step++) {
        rng_fill_normal(&r, s->ps.grad, s->ps.total, 0, 1);
        for (int k = 0; k < s->ck.noptims; k++) opt_step(&s->opt[k]);
    }
    opt_set_lr(&s->opt[0], 1, 0.0125 * (double)seed);
    for (int k = 0; k < 3; k++) {
        rng_seed(&s->r[k], seed * 10 + (uint64_t)k);
        for (int i = 0; i <= k; i++) rng_normal(&s->r[k]);
    }
    for (int k = 0; k < s->ck.norder; k++) s->order[k] = k;
    rng_shuffle(&r, s->order, s->ck.norder);
    s->ck.cursor = (int64_t)(seed % 7);
    s->ck.epoch = (int)seed + 2;
    s->ck.step = (int64_t)seed * 17;
    for (int k = 0; k < MAX_SUM; k++) s->sum[k] = 1.5 * (double)seed + k;
    s->count = (int64_t)seed * 3 - (1LL << 40);
    s->more = (int64_t)seed;
}

/* Bit for bit: everything a checkpoint holds. */
static int run_same(const run *a, const run *b)
{
    const ck_run *x = &a->ck, *y = &b->ck;
    int same = a->ps.total == b->ps.total &&
               memcmp(a->ps.data, b->ps.data, (size_t)a->ps.total * sizeof(float)) == 0;
    for (int k = 0; k < x->noptims && same; k++) {
        const opt_optimizer *o = &a->opt[k], *p = &b->opt[k];
        same = o->step == p->step && opt_state_floats(o) == opt_state_floats(p) &&
               memcmp(o->state, p->state, (size_t)opt_state_floats(o) * sizeof(float)) == 0;
        for (int g = 0; g < o->ngroups && same; g++) same = o->groups[g].lr == p->groups[g].lr;
    }
    for (int k = 0; k < x->nrngs && same; k++)
        same = memcmp(a->r[k].s, b->r[k].s, sizeof a->r[k].s) == 0 &&
               a->r[k].has_spare == b->r[k].has_spare &&
               memcmp(&a->r[k].spare, &b->r[k].spare, sizeof(float)) == 0;
    return same && memcmp(a->order, b->order, (size_t)x->norder * sizeof(int32_t)) == 0 &&
           x->cursor == y->cursor && x->epoch == y->epoch && x->step == y->step &&
           memcmp(a->sum, b->sum, (size_t)a->fields[0].count * sizeof *a->sum) == 0 &&
           a->count == b->count && (x->nfields < 3 || a->more == b->more);
}

/* ---- save and load ---------------------------------------------------------------- */

static void test_round_trip(void)
{
    run a, b;
    ag_error err = {{0}};
    run_make(&a, &base);
    run_scramble(&a, 1);
    ok(a.r[0].has_spare && !a.r[1].has_spare, "the generators hold a spare normal and none");
    if (!ok(ck_save(tmpdir, "last", &a.ck, &err) == AG_OK, "save: %s", err.msg)) return;
    ok(access(in_tmp("last.state.tmp"), F_OK) != 0 &&
           access(in_tmp("last.safetensors.tmp"), F_OK) != 0,
       "no .tmp files are left");

    run_make(&b, &base);
    run_scramble(&b, 2);
    ok(!run_same(&a, &b), "a second run differs everywhere before the load");
    if (ok(ck_load(tmpdir, "last", &b.ck, &err) == AG_OK, "load: %s", err.msg))
        ok(run_same(&a, &b), "weights, moments, steps, learning rates, generators, order, cursor, "
                             "epoch, step and the caller's fields come back bit for bit");

    /* The resumed run takes the same next step as the one that never stopped. */
    rng ga, gb;
    rng_seed(&ga, 99);
    rng_seed(&gb, 99);
    rng_fill_normal(&ga, a.ps.grad, a.ps.total, 0, 1);
    rng_fill_normal(&gb, b.ps.grad, b.ps.total, 0, 1);
    for (int k = 0; k < 2; k++) {
        opt_step(&a.opt[k]);
        opt_step(&b.opt[k]);
    }
    ok(rng_u64(&a.r[2]) == rng_u64(&b.r[2]) && rng_normal(&a.r[0]) == rng_normal(&b.r[0]),
       "the generators continue alike");
    ok(run_same(&a, &b), "one more step after the load matches one more step without it");

    /* The weights file is PyTorch's: names, [out, in] shapes, metadata. */
    sf_file f;
    if (ok(sf_open(&f, in_tmp("last.safetensors"), &err) == AG_OK,
           "the weights read as safetensors")) {
        const sf_tensor *w = sf_get(&f, "G.0.weight");
        ok(f.n == 4 && w && w->ndim == 2 && w->shape[0] == 4 && w->shape[1] == 3,
           "four tensors, G.0.weight [4, 3]");
        is_str(sf_meta_get(&f, "format"), "pt", "__metadata__ format");
        is_str(sf_meta_get(&f, "spec"), "tiny-gan", "__metadata__ spec");
        is_str(sf_meta_get(&f, "spec_hash"), "hash-1", "__metadata__ spec_hash");
        is_str(sf_meta_get(&f, "data"), "4x3 2", "__metadata__ data, the caller's record");
        is_str(sf_meta_get(&f, "vocab"), "0a20", "__metadata__ vocab, the caller's record");
        sf_close(&f);
    }
    run_free(&a);
    run_free(&b);
}

/* The run differing by v is refused with "path: want" and left as it was. */
static void refused(const variant *v, const char *file, const char *want, const char *what)
{
    run s, before;
    ag_error err = {{0}};
    run_make(&s, v);
    run_make(&before, v);
    run_scramble(&s, 3);
    run_scramble(&before, 3);
    char full[1024];
    snprintf(full, sizeof full, "%s/%s: %s", tmpdir, file, want);
    ok(ck_load(tmpdir, "last", &s.ck, &err) == AG_ERR, "%s: refused", what);
    is_str(err.msg, full, "%s: message", what);
    ok(run_same(&s, &before), "%s: nothing changed", what);
    run_free(&s);
    run_free(&before);
}

static void test_mismatch(void)
{
    variant v;
    v = base, v.g_rows = 5;
    refused(&v, "last.safetensors", "checkpoint has G.0.weight [4, 3] but the spec makes [5, 3]",
            "a different shape");
    v = base, v.extra_param = 1;
    refused(&v, "last.safetensors", "checkpoint lacks D.2.bias",
            "a parameter the checkpoint lacks");
    v = base, v.no_d_bias = 1;
    refused(&v, "last.safetensors", "checkpoint has extra tensor D.0.bias",
            "a tensor the spec lacks");
    v = base, v.d_kind = OPT_ADAM;
    refused(&v, "last.state", "optimizer 'opt_D' was sgd in the checkpoint, the spec says adam",
            "another optimizer kind");
    v = base, v.amsgrad = 1;
    refused(&v, "last.state",
            "optimizer 'opt_G' had 32 state values in the checkpoint, the spec makes 48",
            "another state size");
    v = base, v.noptims = 1;
    refused(&v, "last.state", "checkpoint has 2 optimizers, the spec 1", "fewer optimizers");
    v = base, v.d_name = "opt_X";
    refused(&v, "last.state", "checkpoint has optimizer 'opt_D', the spec has none of that name",
            "a renamed optimizer");
    v = base, v.nrngs = 2;
    refused(&v, "last.state", "checkpoint has 3 random generators, the run 2", "fewer generators");
    v = base, v.norder = 12;
    refused(&v, "last.state", "checkpoint's data order has 10 entries, the data set 12",
            "another data set size");
    v = base, v.hash = "hash-2";
    refused(&v, "last.state",
            "checkpoint was made from a different spec (hash hash-1, this spec's hash-2)",
            "another spec");

    run s;
    ag_error err = {{0}};
    v = base, v.hash = NULL;
    run_make(&s, &v);
    ok(ck_load(tmpdir, "last", &s.ck, &err) == AG_OK, "a NULL spec hash accepts any spec: %s",
       err.msg);
    run_free(&s);
}

/* ---- the state file's records, read as ckpt.h lays them out ----------------------- */

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
}

/* Bytes per value of each type code: u8 i32 u32 i64 u64 f32 f64. */
static size_t type_size(uint64_t code)
{
    static const size_t size[] = {0, 1, 4, 4, 8, 8, 4, 8};
    return code < 8 ? size[code] : 0;
}

/* Where the record named name starts (at its name's length), or 0. */
static size_t rec_find(const unsigned char *b, size_t n, const char *name)
{
    for (size_t at = 20; at + 16 <= n - 4;) {
        size_t len = (size_t)le(b + at, 4);
        if (len == strlen(name) && memcmp(b + at + 4, name, len) == 0) return at;
        at += 16 + len + (size_t)le(b + at + 8 + len, 8) * type_size(le(b + at + 4 + len, 4));
    }
    return 0;
}

/* Where the record at `at` keeps its type code, and its values. */
static size_t rec_type(const unsigned char *b, size_t at) { return at + 4 + (size_t)le(b + at, 4); }
static size_t rec_values(const unsigned char *b, size_t at) { return rec_type(b, at) + 12; }

/* Rewrites the state file's length and CRC after an edit, as a forger would. */
static void fix_frame(unsigned char *b, size_t n)
{
    put_le(b + 12, n - 24, 8);
    put_le(b + n - 4, (uint32_t)crc32(0, b, (uInt)(n - 4)), 4);
}

/* good (n bytes) into out with one more record before the CRC; the new length. */
static size_t with_record(unsigned char *out, const unsigned char *good, size_t n, const char *name,
                          uint32_t type, uint64_t count, const void *v)
{
    size_t at = n - 4, len = strlen(name), bytes = (size_t)count * type_size(type);
    memcpy(out, good, at);
    put_le(out + at, len, 4);
    memcpy(out + at + 4, name, len);
    put_le(out + at + 4 + len, type, 4);
    put_le(out + at + 8 + len, count, 8);
    if (bytes) memcpy(out + at + 16 + len, v, bytes);
    at += 16 + len + bytes + 4;
    fix_frame(out, at);
    return at;
}

static void test_corrupt(void)
{
    const char *state = in_tmp("last.state");
    size_t n;
    unsigned char *good = read_bytes(state, &n), *bad = ag_xmalloc(n + 1);
    char want[600];

    memcpy(bad, good, n);
    bad[n / 2] ^= 0x10;
    write_bytes(state, bad, n);
    refused(&base, "last.state", "checksum mismatch: the file is corrupt", "a flipped byte");

    write_bytes(state, good, n - 1);
    snprintf(want, sizeof want, "truncated or padded: %zu bytes, the header says %zu", n - 1, n);
    refused(&base, "last.state", want, "a truncated state file");

    memcpy(bad, good, n);
    bad[n] = 0;
    write_bytes(state, bad, n + 1);
    snprintf(want, sizeof want, "truncated or padded: %zu bytes, the header says %zu", n + 1, n);
    refused(&base, "last.state", want, "a byte appended");

    memcpy(bad, good, n);
    bad[0] = 'X';
    write_bytes(state, bad, n);
    refused(&base, "last.state", "not an aigc-run state file", "a wrong magic");
    write_bytes(state, good, 10);
    refused(&base, "last.state", "not an aigc-run state file", "a file shorter than the frame");

    memcpy(bad, good, n);
    bad[8] = 3;
    write_bytes(state, bad, n);
    refused(&base, "last.state",
            "a checkpoint state of format version 3, newer than this build's 2: update aigc-run",
            "a newer version");
    memcpy(bad, good, n);
    bad[8] = 0;
    write_bytes(state, bad, n);
    refused(&base, "last.state", "corrupt: format version 0", "version 0");

    /* Past the checksum: a forged order that would index the data set out of range. */
    size_t order = rec_values(good, rec_find(good, n, "order"));
    memcpy(bad, good, n);
    memcpy(bad + order + 4, bad + order, 4);
    fix_frame(bad, n);
    write_bytes(state, bad, n);
    refused(&base, "last.state", "corrupt: the data order is not a permutation", "a forged order");

    memcpy(bad, good, n);
    bad[rec_values(good, rec_find(good, n, "cursor"))] = 11; /* the cursor's low byte */
    fix_frame(bad, n);
    write_bytes(state, bad, n);
    refused(&base, "last.state", "corrupt: data cursor 11 is outside the data order (10 entries)",
            "a forged cursor");

    unlink(state);
    refused(&base, "last.state", "cannot open: No such file or directory", "a missing state file");

    /* A state file from another save: the weights it was saved with differ. */
    run other;
    ag_error err = {{0}};
    run_make(&other, &base);
    run_scramble(&other, 4);
    ck_save(tmpdir, "other", &other.ck, &err);
    run_free(&other);
    rename(in_tmp("other.state"), state);
    snprintf(want, sizeof want,
             "does not belong to %s/last.safetensors: saved with other weights "
             "(was a save interrupted?)",
             tmpdir);
    refused(&base, "last.state", want, "a state file from another save");

    write_bytes(state, good, n);
    free(good);
    free(bad);
}

/* The records of the state file saved from the run of seed 1, in the order and types of
 * ckpt.h's table, and nothing after them. */
static void test_records(void)
{
    static const struct {
        const char *name;
        uint32_t type;
        uint64_t count;
    } want[] = {
        {"step", 4, 1},           {"epoch", 4, 1},           {"cursor", 4, 1},
        {"spec_hash", 1, 6},      {"weights_crc", 3, 1},     {"order", 2, 10},
        {"rng.state", 5, 12},     {"rng.has_spare", 1, 3},   {"rng.spare", 6, 3},
        {"optim.opt_G.kind", 1, 4}, {"optim.opt_G.step", 4, 1}, {"optim.opt_G.lr", 7, 2},
        {"optim.opt_G.state", 6, 32}, {"optim.opt_D.kind", 1, 3}, {"optim.opt_D.step", 4, 1},
        {"optim.opt_D.lr", 7, 1}, {"optim.opt_D.state", 6, 6}, {"run.sum", 7, 3},
        {"run.count", 4, 1},
    };
    size_t n;
    unsigned char *b = read_bytes(in_tmp("last.state"), &n);
    ok(n > 24 && memcmp(b, "AIGCSTAT", 8) == 0 && le(b + 8, 4) == 2 && le(b + 12, 8) == n - 24 &&
           le(b + n - 4, 4) == (uint32_t)crc32(0, b, (uInt)(n - 4)),
       "the frame: magic, version 2, the payload's length, the CRC of all before it");
    size_t at = 20;
    int k = 0, same = 1;
    for (; same && k < (int)AG_COUNTOF(want) && at + 16 <= n - 4; k++) {
        size_t len = (size_t)le(b + at, 4);
        uint64_t type = le(b + at + 4 + len, 4), count = le(b + at + 8 + len, 8);
        same = len == strlen(want[k].name) && memcmp(b + at + 4, want[k].name, len) == 0 &&
               type == want[k].type && count == want[k].count;
        if (!same) diag("record %d: %.*s type %llu count %llu", k, (int)len, b + at + 4,
                        (unsigned long long)type, (unsigned long long)count);
        at += 16 + len + (size_t)count * type_size(type);
    }
    ok(same && k == (int)AG_COUNTOF(want) && at == n - 4,
       "the records of ckpt.h's table, in its order and types, up to the CRC");
    ok(le(b + 40, 8) == 17, "step, the first record, has its value at byte 40");
    size_t sum = rec_values(b, rec_find(b, n, "run.sum"));
    double sum2;
    memcpy(&sum2, b + sum + 16, 8);
    ok(sum2 == 1.5 + 2, "run.sum holds the caller's values as they lie in memory");
    ok(memcmp(b + rec_values(b, rec_find(b, n, "optim.opt_D.kind")), "sgd", 3) == 0,
       "opt_D's kind is its name, sgd");
    free(b);
}

/* A run's state loads from tmpdir/last into the run of seed 2 as the run of seed 1 saved it. */
static void loads_as_saved(const variant *v, const char *what)
{
    run want, got;
    ag_error err = {{0}};
    run_make(&want, &base);
    run_scramble(&want, 1);
    run_make(&got, v);
    run_scramble(&got, 2);
    if (ok(ck_load(tmpdir, "last", &got.ck, &err) == AG_OK, "%s: loads: %s", what, err.msg))
        ok(run_same(&want, &got), "%s: everything comes back as saved", what);
    run_free(&want);
    run_free(&got);
}

/* The state file edited record by record: each record found by its name. */
static void test_record_edits(void)
{
    const char *state = in_tmp("last.state");
    size_t n;
    unsigned char *good = read_bytes(state, &n), *bad = ag_xmalloc(n + 256);
    const size_t epoch = rec_find(good, n, "epoch");

    memcpy(bad, good, n);
    bad[epoch + 8] = 'H'; /* epocH */
    fix_frame(bad, n);
    write_bytes(state, bad, n);
    refused(&base, "last.state", "checkpoint lacks 'epoch'", "a record missing");

    memcpy(bad, good, n);
    put_le(bad + rec_type(good, epoch), 7, 4);
    fix_frame(bad, n);
    write_bytes(state, bad, n);
    refused(&base, "last.state", "'epoch' holds f64[1] in the checkpoint, this build reads i64[1]",
            "a record of another type");

    memcpy(bad, good, n);
    put_le(bad + rec_type(good, epoch), 9, 4);
    fix_frame(bad, n);
    write_bytes(state, bad, n);
    refused(&base, "last.state", "corrupt: record 'epoch' has type 9", "an unknown type");

    memcpy(bad, good, n);
    put_le(bad + rec_type(good, rec_find(good, n, "order")) + 4, 1ULL << 62, 8);
    fix_frame(bad, n);
    write_bytes(state, bad, n);
    refused(&base, "last.state", "corrupt: a record runs past the end of the file",
            "a count past the end");

    memcpy(bad, good, n);
    bad[epoch + 5] = '\n';
    fix_frame(bad, n);
    write_bytes(state, bad, n);
    refused(&base, "last.state", "corrupt: a record's name is empty or not text",
            "a control byte in a name");

    memcpy(bad, good, n);
    bad[rec_values(good, rec_find(good, n, "optim.opt_D.kind")) + 2] = 'x';
    fix_frame(bad, n);
    write_bytes(state, bad, n);
    refused(&base, "last.state", "optimizer 'opt_D' was sgx in the checkpoint, the spec says sgd",
            "an optimizer kind this build does not know");

    int64_t one = 1;
    size_t m = with_record(bad, good, n, "epoch", 4, 1, &one);
    write_bytes(state, bad, m);
    refused(&base, "last.state", "corrupt: 'epoch' appears twice", "a record twice");

    /* What a later build may add: records this one skips. */
    float later[2] = {1, 2};
    unsigned char *more = ag_xmalloc(n + 512);
    m = with_record(more, good, n, "later.thing", 6, 2, later);
    m = with_record(bad, more, m, "optim.opt_D.later", 1, 3, "abc");
    m = with_record(more, bad, m, "run.later", 7, 0, NULL);
    write_bytes(state, more, m);
    loads_as_saved(&base, "records this build does not know");
    free(more);
    write_bytes(state, good, n);

    /* The caller's fields: each by its name, in its type, of any count. */
    variant v = base;
    v.more = 1;
    refused(&v, "last.state", "checkpoint lacks 'run.more'", "a caller's field missing");
    v = base, v.count_type = CK_F64;
    refused(&v, "last.state", "'run.count' holds i64[1] in the checkpoint, this build reads f64",
            "a caller's field of another type");
    run r;
    ag_error err = {{0}};
    /* An optional field the file lacks (added after it was written) keeps its value. */
    v = base, v.more = 1;
    run_make(&r, &v);
    r.fields[2].optional = 1;
    r.more = -1;
    ok(ck_load(tmpdir, "last", &r.ck, &err) == AG_OK && r.more == -1 && r.sum[0] == 1.5,
       "an optional field the checkpoint lacks loads and is left as it was: %s", err.msg);
    run_free(&r);
    v = base, v.nsum = 4;
    run_make(&r, &v);
    run_scramble(&r, 2);
    ok(ck_load(tmpdir, "last", &r.ck, &err) == AG_OK && r.sum[0] == 1.5 && r.sum[2] == 3.5 &&
           r.sum[3] == 0,
       "a field saved with 3 values fills the first 3 of 4 and zeroes the last: %s", err.msg);
    run_free(&r);
    v = base, v.nsum = 2;
    run_make(&r, &v);
    run_scramble(&r, 2);
    ok(ck_load(tmpdir, "last", &r.ck, &err) == AG_OK && r.sum[0] == 1.5 && r.sum[1] == 2.5 &&
           r.sum[2] == 5,
       "a field saved with 3 values fills 2 and leaves what is past them: %s", err.msg);
    run_free(&r);

    write_bytes(state, good, n);
    free(good);
    free(bad);
}

/* tests/data/ckpt-v1: a state file of format 1, which ck_save wrote for this run's
 * shapes, refused with the way to its weights, and those weights load. */
static void test_version_1(void)
{
    const char *dir = "tests/data/ckpt-v1";
    run s, before;
    ag_error err = {{0}};
    run_make(&s, &base);
    run_make(&before, &base);
    run_scramble(&s, 3);
    run_scramble(&before, 3);
    ok(ck_load(dir, "last", &s.ck, &err) == AG_ERR, "a state of format 1 is refused");
    is_str(err.msg,
           "tests/data/ckpt-v1/last.state: a checkpoint state of format version 1, which this "
           "build no longer reads; its weights still load with --init "
           "tests/data/ckpt-v1/last.safetensors",
           "with its version and what to do");
    ok(run_same(&s, &before), "and nothing changed");
    size_t n;
    unsigned char *b = read_bytes("tests/data/ckpt-v1/last.state", &n);
    ok(b && n > 12 && le(b + 8, 4) == 1, "the fixture is of format 1");
    free(b);
    err.msg[0] = 0;
    ok(ck_load_weights("tests/data/ckpt-v1/last.safetensors", &s.ps, 0, "tiny-gan", &err) == AG_OK &&
           s.ps.data[0] == 0 && s.ps.data[1] == 0.125f && s.ps.data[12] == 0,
       "its weights load, as the message says: %s", err.msg);
    run_free(&s);
    run_free(&before);
}

/* A save that fails, halfway or at the start, leaves the previous checkpoint as it was. */
static void test_failed_save(void)
{
    size_t wn, sn;
    unsigned char *w = read_bytes(in_tmp("last.safetensors"), &wn),
                  *s = read_bytes(in_tmp("last.state"), &sn);
    run r;
    ag_error err = {{0}};
    char want[600];
    run_make(&r, &base);
    run_scramble(&r, 5);

    /* Cut short after 64 bytes, as by a full disk. */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    int rc = ck_save(tmpdir, "last", &r.ck, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    ok(rc == AG_ERR, "a save cut short fails");
    snprintf(want, sizeof want, "%s/last.state: cannot write: File too large", tmpdir);
    is_str(err.msg, want, "and says why");
    ok(same_file(in_tmp("last.safetensors"), w, wn) && same_file(in_tmp("last.state"), s, sn),
       "both files of the previous checkpoint are untouched");
    ok(access(in_tmp("last.state.tmp"), F_OK) != 0, "the partial .tmp is removed");

    /* The weights cannot be written after the state was: the state must not land. */
    mkdir(in_tmp("last.safetensors.tmp"), 0755);
    rc = ck_save(tmpdir, "last", &r.ck, &err);
    rmdir(in_tmp("last.safetensors.tmp"));
    ok(rc == AG_ERR, "a save whose weights fail fails");
    snprintf(want, sizeof want, "%s/last.safetensors: cannot write: Is a directory", tmpdir);
    is_str(err.msg, want, "and says why");
    ok(same_file(in_tmp("last.safetensors"), w, wn) && same_file(in_tmp("last.state"), s, sn),
       "both files of the previous checkpoint are untouched");
    ok(access(in_tmp("last.state.tmp"), F_OK) != 0, "the state's .tmp is removed");

    snprintf(want, sizeof want, "%s/missing/last.state: cannot write: No such file or directory",
             tmpdir);
    ok(ck_save(in_tmp("missing"), "last", &r.ck, &err) == AG_ERR,
       "a save into a missing directory fails");
    is_str(err.msg, want, "and says why");

    run back;
    run_make(&back, &base);
    err.msg[0] = 0;
    ok(ck_load(tmpdir, "last", &back.ck, &err) == AG_OK, "the previous checkpoint still loads: %s",
       err.msg);
    run_free(&back);
    run_free(&r);
    free(w);
    free(s);
}

/* ---- PyTorch interop --------------------------------------------------------------- */

static int close_all(const float *got, const float *want, int64_t n, double atol, double rtol,
                     double *worst)
{
    int64_t bad = 0;
    *worst = 0;
    for (int64_t k = 0; k < n; k++) {
        double e = fabs((double)got[k] - want[k]);
        if (e > *worst) *worst = e;
        bad += !tap_close(got[k], want[k], atol, rtol);
    }
    return bad == 0;
}

/* The seed GAN's generator, as PyTorch saved it, computes on the engine what it
 * computed in PyTorch. */
static void test_pytorch_generator(void)
{
    static const int width[4] = {100, 256, 512, 784};
    static const char *const names[6] = {"G.0.weight", "G.0.bias",   "G.2.weight",
                                         "G.2.bias",   "G.4.weight", "G.4.bias"};
    ag_params ps;
    ag_params_init(&ps);
    for (int l = 0; l < 3; l++) {
        ag_params_add(&ps, names[2 * l], ag_shape2(width[l + 1], width[l]), (ag_loc){0});
        ag_params_add(&ps, names[2 * l + 1], ag_shape1(width[l + 1]), (ag_loc){0});
    }
    ag_params_alloc(&ps);
    ag_error err = {{0}};
    if (!ok(ck_load_weights(GOLDEN "generator.safetensors", &ps, 0, NULL, &err) == AG_OK,
            "PyTorch's generator.safetensors loads: %s", err.msg)) {
        ag_params_free(&ps);
        return;
    }

    sf_file io;
    if (!ok(sf_open(&io, GOLDEN "generator_io.safetensors", &err) == AG_OK, "generator_io: %s",
            err.msg)) {
        ag_params_free(&ps);
        return;
    }
    const sf_tensor *z = sf_get(&io, "z"), *out = sf_get(&io, "out");
    rng r;
    rng_seed(&r, 0);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *h = ag_input(&g, "z", ag_shape2(0, 100), 1);
    for (int l = 0; l < 3; l++) {
        h = ag_linear(&g, h, ag_param(&g, 2 * l), ag_param(&g, 2 * l + 1));
        h = ag_unary(&g, l < 2 ? AG_OP_RELU : AG_OP_TANH, h);
    }
    if (ok(h && z && out && sf_numel(z) == 400 && sf_numel(out) == 4 * 784 &&
               ag_graph_plan(&g, 4, &err) == AG_OK,
           "G builds on the engine")) {
        memcpy(g.nodes[0]->data, z->data, 400 * sizeof(float));
        ag_forward(&g, 0, g.n);
        double worst;
        int same = close_all(h->data, out->data, 4 * 784, 1e-5, 1e-5, &worst);
        ok(same, "G(z) matches PyTorch's, 4 x 784 values (worst abs error %.2g)", worst);
    }
    ag_graph_free(&g);
    sf_close(&io);
    ag_params_free(&ps);

    /* The brief's own example of a mismatch, against the PyTorch file. */
    ag_params_init(&ps);
    ag_params_add(&ps, "G.0.weight", ag_shape2(128, 100), (ag_loc){0});
    ag_params_alloc(&ps);
    ok(ck_load_weights(GOLDEN "generator.safetensors", &ps, 0, NULL, &err) == AG_ERR,
       "a narrower G is refused");
    is_str(
        err.msg,
        GOLDEN
        "generator.safetensors: checkpoint has G.0.weight [256, 100] but the spec makes [128, 100]",
        "with the shapes of both");
    ag_params_free(&ps);
}

/* M = Sequential(Linear(8, 4), Tanh(), Linear(4, 2)) with exact binary fractions, so
 * that its checkpoint is the same bytes on every machine. */
static void test_written_by_aigc(void)
{
    ag_params ps;
    ag_params_init(&ps);
    ag_params_add(&ps, "M.0.weight", ag_shape2(4, 8), (ag_loc){0});
    ag_params_add(&ps, "M.0.bias", ag_shape1(4), (ag_loc){0});
    ag_params_add(&ps, "M.2.weight", ag_shape2(2, 4), (ag_loc){0});
    ag_params_add(&ps, "M.2.bias", ag_shape1(2), (ag_loc){0});
    ag_params_alloc(&ps);
    for (int64_t k = 0; k < ps.total; k++) ps.data[k] = (float)(k * 37 % 17 - 8) / 16.0f;

    ck_run cr = {.spec_name = "tiny", .spec_hash = "0123abcd", .params = &ps};
    ag_error err = {{0}};
    if (!ok(ck_save(tmpdir, "tiny", &cr, &err) == AG_OK, "ck_save of M: %s", err.msg)) {
        ag_params_free(&ps);
        return;
    }

    /* The bytes, against the format. */
    size_t n;
    unsigned char *b = read_bytes(in_tmp("tiny.safetensors"), &n);
    uint64_t hlen = 0;
    for (int k = 0; k < 8; k++) hlen |= (uint64_t)b[k] << (8 * k);
    const char *json =
        "{\"__metadata__\":{\"format\":\"pt\",\"spec\":\"tiny\",\"spec_hash\":\"0123abcd\"},"
        "\"M.0.weight\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]},"
        "\"M.0.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[128,144]},"
        "\"M.2.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[144,176]},"
        "\"M.2.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[176,184]}}";
    size_t jn = strlen(json);
    int spaces = hlen >= jn && hlen - jn < 8;
    for (size_t k = 8 + jn; spaces && k < 8 + hlen; k++) spaces = b[k] == ' ';
    ok(hlen >= jn && memcmp(b + 8, json, jn) == 0,
       "the header is the JSON of the format, keys in order");
    ok(spaces && (8 + hlen) % 8 == 0, "padded with spaces to an 8-aligned data section");
    ok(n == 8 + hlen + 184 && memcmp(b + 8 + hlen, ps.data, 184) == 0,
       "the data section is the store's floats, little-endian, nothing after");

    /* The forward pass PyTorch checks: x [3, 8] through M. */
    float x[24];
    for (int k = 0; k < 24; k++) x[k] = (float)(k * 11 % 13 - 6) / 8.0f;
    rng r;
    rng_seed(&r, 0);
    ag_graph g;
    ag_graph_init(&g, &ps, &r);
    ag_node *in = ag_input(&g, "x", ag_shape2(0, 8), 1);
    ag_node *y =
        ag_linear(&g, ag_unary(&g, AG_OP_TANH, ag_linear(&g, in, ag_param(&g, 0), ag_param(&g, 1))),
                  ag_param(&g, 2), ag_param(&g, 3));
    if (!y || ag_graph_plan(&g, 3, &err)) ok(0, "M builds: %s %s", g.err.msg, err.msg);
    memcpy(in->data, x, sizeof x);
    ag_forward(&g, 0, g.n);

    if (getenv("AIGC_WRITE_GOLDEN")) {
        write_bytes(GOLDEN "written_by_aigc.safetensors", b, n);
        sf_tensor io[2] = {{.name = "x", .ndim = 2, .shape = {3, 8}, .data = x},
                           {.name = "y", .ndim = 2, .shape = {3, 2}, .data = y->data}};
        ok(sf_write(GOLDEN "written_by_aigc_io.safetensors", io, 2, (sf_meta[]){{"format", "pt"}},
                    1, &err) == AG_OK,
           "wrote " GOLDEN "written_by_aigc*.safetensors: %s", err.msg);
    }
    ok(same_file(GOLDEN "written_by_aigc.safetensors", b, n),
       "ck_save still writes " GOLDEN "written_by_aigc.safetensors byte for byte");
    sf_file io;
    if (ok(sf_open(&io, GOLDEN "written_by_aigc_io.safetensors", &err) == AG_OK,
           "its inputs and outputs: %s", err.msg)) {
        const sf_tensor *gy = sf_get(&io, "y");
        double worst;
        ok(gy && sf_numel(gy) == 6 && close_all(y->data, gy->data, 6, 1e-6, 1e-5, &worst),
           "M(x) is what the fixture holds");
        sf_close(&io);
    }
    ag_graph_free(&g);
    free(b);
    ag_params_free(&ps);
}

int main(void)
{
    tmp_open("ckpt");
    test_round_trip();
    test_mismatch();
    test_corrupt();
    test_records();
    test_record_edits();
    test_version_1();
    test_failed_save();
    test_pytorch_generator();
    test_written_by_aigc();
    tmp_close();
    return tap_done();
}
