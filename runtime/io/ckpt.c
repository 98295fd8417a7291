/* ckpt.c — checkpoints: the weights as safetensors, the rest in a checksummed state
 * file (see ckpt.h for both formats). */
#include "aigc/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aigc/afile.h"
#include "aigc/safetensors.h"

/* The state file's values go to and from disk as they lie in memory. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the state file is little-endian: this file needs a byte swap on this machine"
#endif

static const char ck_magic[8] = {'A', 'I', 'G', 'C', 'S', 'T', 'A', 'T'};

/* magic, version, payload length */
enum { CK_PREFIX = 8 + 4 + 8, CK_SUFFIX = 4 };

static ag_loc ck_at_impl(const char *path) { return (ag_loc){path, 0, 0}; }

static int ck_path_impl(char *buf, size_t len, const char *dir, const char *name, const char *ext,
                        ag_error *err)
{
    int n = snprintf(buf, len, "%s/%s%s", dir, name, ext);
    if (n < 0 || (size_t)n >= len)
        return ag_errorf(err, (ag_loc){0}, "%s/%s%s: path too long", dir, name, ext);
    return AG_OK;
}

static uint32_t ck_crc_impl(uint32_t crc, const void *p, size_t n)
{
    return (uint32_t)crc32_z(crc, p, n);
}

/* ---- the weights ----------------------------------------------------------------- */

static uint32_t ck_weights_crc_impl(const ag_params *ps)
{
    uint32_t crc = ck_crc_impl(0, NULL, 0);
    for (int k = 0; k < ps->n; k++)
        crc = ck_crc_impl(crc, ps->p[k].data, (size_t)ag_numel(&ps->p[k].shape) * sizeof(float));
    return crc;
}

static int ck_shape_eq_impl(const sf_tensor *t, const ag_shape *s)
{
    if (t->ndim != s->ndim) return 0;
    for (int d = 0; d < s->ndim; d++)
        if (t->shape[d] != s->d[d]) return 0;
    return 1;
}

/* The tensor for parameter p: its own, or with seed_ema, for an exponential average
 * (ema.MODEL.NAME) the file lacks, the weight it averages (MODEL.NAME). */
static const sf_tensor *ck_tensor_impl(const sf_file *f, const ag_parameter *p, int seed_ema)
{
    const sf_tensor *t = sf_get(f, p->name);
    if (!t && seed_ema && !strncmp(p->name, "ema.", 4)) t = sf_get(f, p->name + 4);
    return t;
}

/* The first difference between the file's tensors and the store, as a message. */
static int ck_differ_impl(const sf_file *f, const ag_params *ps, int seed_ema, ag_error *err)
{
    const ag_loc at = ck_at_impl(f->path);
    int seeded = 0;
    for (int k = 0; k < ps->n; k++) {
        const ag_parameter *p = &ps->p[k];
        const sf_tensor *t = ck_tensor_impl(f, p, seed_ema);
        if (!t) return ag_errorf(err, at, "checkpoint lacks %s", p->name);
        seeded += t != sf_get(f, p->name);
        if (!ck_shape_eq_impl(t, &p->shape)) {
            char have[256], want[64];
            return ag_errorf(err, at, "checkpoint has %s %s but the spec makes %s", p->name,
                             sf_shape_str(t, have, sizeof have),
                             ag_shape_str(&p->shape, 0, want, sizeof want));
        }
    }
    /* Each parameter matched a distinct tensor but the seeded ones; any more are extra. */
    for (int k = 0; k < f->n && f->n > ps->n - seeded; k++)
        if (ag_params_find(ps, f->t[k].name) < 0)
            return ag_errorf(err, at, "checkpoint has extra tensor %s", f->t[k].name);
    return AG_OK;
}

/* The file's tensors against the store: every parameter present in its shape, and
 * nothing else. The first difference, in the store's order, is the one reported, and
 * with it the spec the file was saved from when that is another one than spec_name
 * (NULL: not known): the likely mistake is the path. */
static int ck_match_impl(const sf_file *f, const ag_params *ps, int seed_ema, const char *spec_name,
                         ag_error *err)
{
    if (ck_differ_impl(f, ps, seed_ema, err) == AG_OK) return AG_OK;
    const char *saved = sf_meta_get(f, "spec");
    if (spec_name && saved && strcmp(saved, spec_name))
        ag_error_addf(err, " (a checkpoint of spec '%s', not of '%s')", saved, spec_name);
    return AG_ERR;
}

/* The first parameter the file holds a NaN or an infinity for, or -1. */
static int ck_nonfinite_impl(const sf_file *f, const ag_params *ps, int seed_ema)
{
    for (int k = 0; k < ps->n; k++) {
        const sf_tensor *t = ck_tensor_impl(f, &ps->p[k], seed_ema);
        const unsigned char *x = (const unsigned char *)t->data;
        for (int64_t j = 0; j < sf_numel(t); j++) {
            float v; /* the file's floats need not be aligned */
            memcpy(&v, x + 4 * j, sizeof v);
            if (!isfinite(v)) return k;
        }
    }
    return -1;
}

static void ck_copy_weights_impl(const sf_file *f, ag_params *ps, int seed_ema)
{
    for (int k = 0; k < ps->n; k++) {
        const sf_tensor *t = ck_tensor_impl(f, &ps->p[k], seed_ema);
        memcpy(ps->p[k].data, t->data, (size_t)sf_numel(t) * sizeof(float));
    }
}

/* The CRC the state file keeps: the file's floats in the store's order, as
 * ck_weights_crc_impl computes it from the store. */
static uint32_t ck_file_crc_impl(const sf_file *f, const ag_params *ps)
{
    uint32_t crc = ck_crc_impl(0, NULL, 0);
    for (int k = 0; k < ps->n; k++) {
        const sf_tensor *t = sf_get(f, ps->p[k].name);
        crc = ck_crc_impl(crc, t->data, (size_t)sf_numel(t) * sizeof(float));
    }
    return crc;
}

int ck_load_weights(const char *path, ag_params *ps, int seed_ema, const char *spec_name, ag_error *err)
{
    AG_ASSERT(ps->data);
    sf_file f;
    if (sf_open(&f, path, err)) return AG_ERR;
    int rc = ck_match_impl(&f, ps, seed_ema, spec_name, err);
    int bad = rc == AG_OK ? ck_nonfinite_impl(&f, ps, seed_ema) : -1;
    /* Training from them (--init) would diverge at once; a sample or an evaluation
     * shows what they make, NaN, said first. */
    if (bad >= 0 && seed_ema)
        rc = ag_errorf(err, ck_at_impl(path), "%s holds non-finite values: the run had diverged when it was saved",
                       ps->p[bad].name);
    else if (bad >= 0)
        fprintf(stderr, "%s: warning: %s holds non-finite values (the run had diverged when it was saved)\n", path,
                ps->p[bad].name);
    if (rc == AG_OK) ck_copy_weights_impl(&f, ps, seed_ema);
    sf_close(&f);
    return rc;
}

int ck_locate(const char *from, char *dir, size_t dn, char *name, size_t nn)
{
    struct stat sb;
    if (stat(from, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(dir, dn, "%s", from);
        snprintf(name, nn, "last");
        return AG_OK;
    }
    const char *slash = strrchr(from, '/');
    snprintf(dir, dn, "%.*s", slash ? (int)(slash - from) : 1, slash ? from : ".");
    snprintf(name, nn, "%s", slash ? slash + 1 : from);
    char *dot = strrchr(name, '.');
    if (dot && (!strcmp(dot, ".safetensors") || !strcmp(dot, ".state"))) *dot = 0;
    char path[4700];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    return stat(from, &sb) == 0 || stat(path, &sb) == 0 ? AG_OK : AG_ERR;
}

const char *ck_weights_path(const char *from, char *buf, size_t n)
{
    struct stat sb;
    size_t len = strlen(from);
    int state = len > 6 && !strcmp(from + len - 6, ".state");
    char dir[4096], name[512];
    if ((stat(from, &sb) == 0 && !S_ISDIR(sb.st_mode) && !state) || ck_locate(from, dir, sizeof dir, name, sizeof name))
        return from;
    snprintf(buf, n, "%s/%s.safetensors", dir, name);
    return buf;
}

void ck_run_dir(char *buf, size_t n, const char *out, const char *spec_name)
{
    if (out)
        snprintf(buf, n, "%s", out);
    else
        snprintf(buf, n, "runs/%s", spec_name);
}

const char *ck_run_weights(const char *spec_name, char *buf, size_t n)
{
    ck_run_dir(buf, n, NULL, spec_name);
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "/last.safetensors");
    return buf;
}

static int ck_save_weights_impl(const char *path, const ck_run *run, ag_error *err)
{
    const ag_params *ps = run->params;
    sf_tensor *t = ag_xcalloc((size_t)ps->n, sizeof *t);
    for (int k = 0; k < ps->n; k++) {
        const ag_parameter *p = &ps->p[k];
        t[k].name = p->name;
        t[k].ndim = p->shape.ndim;
        for (int d = 0; d < p->shape.ndim; d++) t[k].shape[d] = p->shape.d[d];
        t[k].data = p->data;
    }
    sf_meta meta[5] = {{"format", "pt"}, {"spec", run->spec_name}, {"spec_hash", run->spec_hash}};
    int nmeta = 3;
    if (run->data) meta[nmeta++] = (sf_meta){"data", run->data};
    if (run->vocab) meta[nmeta++] = (sf_meta){"vocab", run->vocab};
    int rc = sf_write(path, t, ps->n, meta, nmeta, err);
    free(t);
    return rc;
}

/* ---- the state file: records ------------------------------------------------------ */

/* The record types by their codes; code 0 is none. */
static const struct {
    const char *name;
    size_t size;
} ck_types[CK_TYPE_COUNT] = {
    [CK_U8] = {"u8", 1},  [CK_I32] = {"i32", 4}, [CK_U32] = {"u32", 4}, [CK_I64] = {"i64", 8},
    [CK_U64] = {"u64", 8}, [CK_F32] = {"f32", 4}, [CK_F64] = {"f64", 8},
};

/* A record's name, in up to three parts: "optim." NAME ".lr". */
typedef struct ck_key {
    const char *pre, *name, *post;
} ck_key;

static ck_key ck_key1_impl(const char *name) { return (ck_key){"", name, ""}; }

/* ---- the state file: writing ------------------------------------------------------ */

/* A record's head; its count values follow. */
static void ck_head_impl(ag_bytes *b, ck_key k, ck_type t, uint64_t count)
{
    size_t a = strlen(k.pre), m = strlen(k.name), z = strlen(k.post);
    AG_ASSERT(a + m + z > 0 && a + m + z <= UINT32_MAX && t > 0 && t < CK_TYPE_COUNT);
    uint32_t len = (uint32_t)(a + m + z), code = (uint32_t)t;
    ag_bytes_put(b, &len, 4);
    ag_bytes_put(b, k.pre, a);
    ag_bytes_put(b, k.name, m);
    ag_bytes_put(b, k.post, z);
    ag_bytes_put(b, &code, 4);
    ag_bytes_put(b, &count, 8);
}

static void ck_put_impl(ag_bytes *b, ck_key k, ck_type t, uint64_t count, const void *v)
{
    ck_head_impl(b, k, t, count);
    ag_bytes_put(b, v, (size_t)count * ck_types[t].size);
}

static void ck_text_impl(ag_bytes *b, ck_key k, const char *s)
{
    ck_put_impl(b, k, CK_U8, strlen(s), s);
}

/* The whole state file, in the layout of ckpt.h. */
static void ck_state_bytes_impl(ag_bytes *b, const ck_run *run)
{
    const uint32_t version = CK_VERSION, wcrc = ck_weights_crc_impl(run->params);
    const uint64_t len = 0; /* the payload's, known at the end */
    const int64_t epoch = run->epoch;
    ag_bytes_put(b, ck_magic, sizeof ck_magic);
    ag_bytes_put(b, &version, 4);
    ag_bytes_put(b, &len, 8);

    ck_put_impl(b, ck_key1_impl("step"), CK_I64, 1, &run->step);
    ck_put_impl(b, ck_key1_impl("epoch"), CK_I64, 1, &epoch);
    ck_put_impl(b, ck_key1_impl("cursor"), CK_I64, 1, &run->cursor);
    ck_text_impl(b, ck_key1_impl("spec_hash"), run->spec_hash);
    ck_put_impl(b, ck_key1_impl("weights_crc"), CK_U32, 1, &wcrc);
    ck_put_impl(b, ck_key1_impl("order"), CK_I32, (uint64_t)run->norder, run->order);
    const uint64_t nrngs = (uint64_t)run->nrngs;
    ck_head_impl(b, ck_key1_impl("rng.state"), CK_U64, 4 * nrngs);
    for (int k = 0; k < run->nrngs; k++) ag_bytes_put(b, run->rngs[k]->s, sizeof run->rngs[k]->s);
    ck_head_impl(b, ck_key1_impl("rng.has_spare"), CK_U8, nrngs);
    for (int k = 0; k < run->nrngs; k++) {
        unsigned char has = run->rngs[k]->has_spare != 0;
        ag_bytes_put(b, &has, 1);
    }
    ck_head_impl(b, ck_key1_impl("rng.spare"), CK_F32, nrngs);
    for (int k = 0; k < run->nrngs; k++) ag_bytes_put(b, &run->rngs[k]->spare, 4);
    for (int k = 0; k < run->noptims; k++) {
        const opt_optimizer *o = &run->optims[k];
        const char *name = run->optim_names[k];
        ck_text_impl(b, (ck_key){"optim.", name, ".kind"}, opt_kind_name(o->kind));
        ck_put_impl(b, (ck_key){"optim.", name, ".step"}, CK_I64, 1, &o->step);
        ck_head_impl(b, (ck_key){"optim.", name, ".lr"}, CK_F64, (uint64_t)o->ngroups);
        for (int g = 0; g < o->ngroups; g++) ag_bytes_put(b, &o->groups[g].lr, 8);
        ck_put_impl(b, (ck_key){"optim.", name, ".state"}, CK_F32, (uint64_t)opt_state_floats(o),
                    o->state);
    }
    for (int k = 0; k < run->nfields; k++) {
        const ck_field *f = &run->fields[k];
        AG_ASSERT(f->name && f->count >= 0 && (f->ptr || !f->count));
        ck_put_impl(b, (ck_key){"run.", f->name, ""}, f->type, (uint64_t)f->count, f->ptr);
    }

    const uint64_t payload = b->n - CK_PREFIX;
    memcpy(b->p + 12, &payload, 8);
    const uint32_t crc = ck_crc_impl(ck_crc_impl(0, NULL, 0), b->p, b->n);
    ag_bytes_put(b, &crc, 4);
}

int ck_save(const char *dir, const char *name, const ck_run *run, ag_error *err)
{
    AG_ASSERT(run->params && run->params->data && run->spec_name && run->spec_hash);
    AG_ASSERT(run->noptims >= 0 && run->nrngs >= 0 && run->norder >= 0 && run->nfields >= 0);
    AG_ASSERT(run->cursor >= 0 && run->cursor <= run->norder && (run->order || !run->norder));
    char wpath[4096], spath[4096];
    if (ck_path_impl(wpath, sizeof wpath, dir, name, ".safetensors", err) ||
        ck_path_impl(spath, sizeof spath, dir, name, ".state", err))
        return AG_ERR;

    /* The state goes to disk first and is renamed last: a failure at any point before
     * that last rename leaves the previous pair whole, and the one after it (a
     * rename, which needs no space) leaves a pair that ck_load refuses. */
    af_file f;
    if (af_begin(&f, spath, err) != AG_OK) return AG_ERR;
    ag_bytes b = {0};
    ck_state_bytes_impl(&b, run);
    int rc = af_write(&f, b.p, b.n, err);
    free(b.p);
    if (rc == AG_OK) rc = af_finish(&f, err);
    if (rc == AG_OK && ck_save_weights_impl(wpath, run, err) != AG_OK) {
        af_abort(&f);
        rc = AG_ERR;
    }
    return rc == AG_OK ? af_rename(&f, err) : AG_ERR;
}

/* ---- the state file: reading ------------------------------------------------------ */

/* Bounded little-endian reads; past the end they return 0 and set short_read. */
typedef struct ck_reader {
    const unsigned char *p;
    size_t n, pos;
    int short_read;
} ck_reader;

static int ck_has_impl(ck_reader *r, uint64_t n)
{
    if (r->n - r->pos < n) r->short_read = 1;
    return !r->short_read;
}

static uint64_t ck_get_impl(ck_reader *r, int bytes)
{
    if (!ck_has_impl(r, (uint64_t)bytes)) return 0;
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v |= (uint64_t)r->p[r->pos + (size_t)k] << (8 * k);
    r->pos += (size_t)bytes;
    return v;
}

/* A record in place: its values start at v, unaligned. */
typedef struct ck_rec {
    const char *name;
    uint32_t nlen;
    uint32_t type; /* a ck_type once the record is known well formed */
    uint64_t count;
    const unsigned char *v;
} ck_rec;

/* Names and kinds: one byte or more, none a control byte. */
static int ck_is_text_impl(const void *s, uint64_t n)
{
    const unsigned char *c = s;
    for (uint64_t k = 0; k < n; k++)
        if (c[k] < 0x20 || c[k] == 0x7f) return 0;
    return n > 0;
}

/* A length for "%.*s" in a message. */
static int ck_shown_impl(uint64_t n) { return n < 200 ? (int)n : 200; }

/* The record at r's position into *e, and r past it: 1, or 0 at the end of the
 * payload, or -1 for a malformed one (short_read set, a bad name, or an unknown type). */
static int ck_next_impl(ck_reader *r, ck_rec *e)
{
    if (r->pos == r->n) return 0;
    e->nlen = (uint32_t)ck_get_impl(r, 4);
    e->name = ck_has_impl(r, e->nlen) ? (const char *)r->p + r->pos : "";
    if (!r->short_read) r->pos += e->nlen;
    e->type = (uint32_t)ck_get_impl(r, 4);
    e->count = ck_get_impl(r, 8);
    if (r->short_read || !ck_is_text_impl(e->name, e->nlen) || e->type == 0 ||
        e->type >= CK_TYPE_COUNT)
        return -1;
    size_t size = ck_types[e->type].size;
    if (e->count > (r->n - r->pos) / size) return r->short_read = 1, -1;
    e->v = r->p + r->pos;
    r->pos += (size_t)e->count * size;
    return 1;
}

static int ck_named_impl(const ck_rec *e, ck_key k)
{
    size_t a = strlen(k.pre), m = strlen(k.name), z = strlen(k.post);
    return e->nlen == a + m + z && !memcmp(e->name, k.pre, a) && !memcmp(e->name + a, k.name, m) &&
           !memcmp(e->name + a + m, k.post, z);
}

static int ck_text_eq_impl(const ck_rec *e, const char *s)
{
    return e->count == strlen(s) && !memcmp(e->v, s, e->count);
}

/* The value of an i64[1] record. */
static int64_t ck_i64_impl(const ck_rec *e)
{
    int64_t v;
    memcpy(&v, e->v, 8);
    return v;
}

typedef struct ck_ctx {
    const char *path; /* the state file */
    const char *wpath; /* the weights file */
    ck_reader payload; /* its records, known well formed */
    uint32_t weights_crc; /* of the weights file */
    int apply; /* 0: check only; 1: restore too */
    ag_error *err;
} ck_ctx;

/* Every record well formed, so that the lookups below need not check again. */
static int ck_scan_impl(const ck_ctx *c)
{
    ck_reader r = c->payload;
    ck_rec e;
    int got;
    while ((got = ck_next_impl(&r, &e)) > 0) {}
    if (got == 0) return AG_OK;
    const ag_loc at = ck_at_impl(c->path);
    if (r.short_read)
        return ag_errorf(c->err, at, "corrupt: a record runs past the end of the file");
    if (!ck_is_text_impl(e.name, e.nlen))
        return ag_errorf(c->err, at, "corrupt: a record's name is empty or not text");
    return ag_errorf(c->err, at, "corrupt: record '%.*s' has type %u", ck_shown_impl(e.nlen),
                     e.name, e.type);
}

/* The one record named k. */
static int ck_find_impl(const ck_ctx *c, ck_key k, ck_rec *out)
{
    ck_reader r = c->payload;
    ck_rec e;
    int found = 0;
    while (ck_next_impl(&r, &e) > 0)
        if (ck_named_impl(&e, k) && found++ == 0) *out = e;
    if (found == 1) return AG_OK;
    return ag_errorf(c->err, ck_at_impl(c->path),
                     found ? "corrupt: '%s%s%s' appears twice" : "checkpoint lacks '%s%s%s'", k.pre,
                     k.name, k.post);
}

/* Whether any record is named k. */
static int ck_present_impl(const ck_ctx *c, ck_key k)
{
    ck_reader r = c->payload;
    ck_rec e;
    while (ck_next_impl(&r, &e) > 0)
        if (ck_named_impl(&e, k)) return 1;
    return 0;
}

/* The record named k, of type t, and of count values unless count is negative. */
static int ck_want_impl(const ck_ctx *c, ck_key k, ck_type t, int64_t count, ck_rec *e)
{
    if (ck_find_impl(c, k, e)) return AG_ERR;
    if (e->type == (uint32_t)t && (count < 0 || e->count == (uint64_t)count)) return AG_OK;
    char want[48];
    if (count < 0) snprintf(want, sizeof want, "%s", ck_types[t].name);
    else snprintf(want, sizeof want, "%s[%lld]", ck_types[t].name, (long long)count);
    return ag_errorf(c->err, ck_at_impl(c->path),
                     "'%s%s%s' holds %s[%llu] in the checkpoint, this build reads %s", k.pre,
                     k.name, k.post, ck_types[e->type].name, (unsigned long long)e->count, want);
}

/* The data order: the run's length, a permutation, the cursor inside it. */
static int ck_order_impl(const ck_ctx *c, ck_run *run, int64_t cursor)
{
    const ag_loc at = ck_at_impl(c->path);
    ck_rec e;
    if (ck_want_impl(c, ck_key1_impl("order"), CK_I32, -1, &e)) return AG_ERR;
    uint64_t n = e.count;
    if (n != (uint64_t)run->norder)
        return ag_errorf(c->err, at, "checkpoint's data order has %llu entries, the data set %lld",
                         (unsigned long long)n, (long long)run->norder);
    if (cursor < 0 || (uint64_t)cursor > n)
        return ag_errorf(c->err, at,
                         "corrupt: data cursor %lld is outside the data order (%llu entries)",
                         (long long)cursor, (unsigned long long)n);
    if (c->apply) {
        if (n) memcpy(run->order, e.v, (size_t)n * 4);
        return AG_OK;
    }
    /* fill_batch indexes the data set with these: each must be in range, once. */
    unsigned char *seen = ag_xcalloc(n ? n : 1, 1);
    int rc = AG_OK;
    for (uint64_t k = 0; k < n && rc == AG_OK; k++) {
        uint32_t v;
        memcpy(&v, e.v + 4 * k, 4);
        if (v >= n || seen[v])
            rc = ag_errorf(c->err, at, "corrupt: the data order is not a permutation");
        else seen[v] = 1;
    }
    free(seen);
    return rc;
}

static int ck_rngs_impl(const ck_ctx *c, ck_run *run)
{
    ck_rec state, has, spare;
    if (ck_want_impl(c, ck_key1_impl("rng.spare"), CK_F32, -1, &spare)) return AG_ERR;
    if (spare.count != (uint64_t)run->nrngs)
        return ag_errorf(c->err, ck_at_impl(c->path),
                         "checkpoint has %llu random generators, the run %d",
                         (unsigned long long)spare.count, run->nrngs);
    if (ck_want_impl(c, ck_key1_impl("rng.state"), CK_U64, 4 * (int64_t)run->nrngs, &state) ||
        ck_want_impl(c, ck_key1_impl("rng.has_spare"), CK_U8, run->nrngs, &has))
        return AG_ERR;
    for (int k = 0; k < run->nrngs; k++) {
        if (has.v[k] > 1)
            return ag_errorf(c->err, ck_at_impl(c->path), "corrupt: random generator %d", k);
        if (!c->apply) continue;
        rng *g = run->rngs[k];
        memcpy(g->s, state.v + 32 * (size_t)k, sizeof g->s);
        g->has_spare = has.v[k];
        memcpy(&g->spare, spare.v + 4 * (size_t)k, 4);
    }
    return AG_OK;
}

/* The optimizer the spec names optim_names[j], from its records optim.NAME.*. */
static int ck_optim_impl(const ck_ctx *c, ck_run *run, int j)
{
    const ag_loc at = ck_at_impl(c->path);
    const char *name = run->optim_names[j];
    opt_optimizer *o = &run->optims[j];
    ck_rec kind, step, lr, state;
    if (ck_want_impl(c, (ck_key){"optim.", name, ".kind"}, CK_U8, -1, &kind) ||
        ck_want_impl(c, (ck_key){"optim.", name, ".step"}, CK_I64, 1, &step) ||
        ck_want_impl(c, (ck_key){"optim.", name, ".lr"}, CK_F64, -1, &lr) ||
        ck_want_impl(c, (ck_key){"optim.", name, ".state"}, CK_F32, -1, &state))
        return AG_ERR;
    if (!ck_is_text_impl(kind.v, kind.count))
        return ag_errorf(c->err, at, "corrupt: optimizer '%s' has a kind that is not a name", name);
    if (!ck_text_eq_impl(&kind, opt_kind_name(o->kind)))
        return ag_errorf(c->err, at, "optimizer '%s' was %.*s in the checkpoint, the spec says %s",
                         name, ck_shown_impl(kind.count), (const char *)kind.v,
                         opt_kind_name(o->kind));
    if (ck_i64_impl(&step) < 0)
        return ag_errorf(c->err, at, "corrupt: optimizer '%s' has a negative step", name);
    if (lr.count != (uint64_t)o->ngroups)
        return ag_errorf(
            c->err, at,
            "optimizer '%s' had %llu parameter groups in the checkpoint, the spec makes %d", name,
            (unsigned long long)lr.count, o->ngroups);
    for (int g = 0; g < o->ngroups; g++) {
        double v;
        memcpy(&v, lr.v + 8 * (size_t)g, 8);
        if (!(v >= 0))
            return ag_errorf(c->err, at, "corrupt: optimizer '%s' has learning rate %g", name, v);
        if (c->apply) opt_set_lr(o, g, v);
    }
    int64_t want = opt_state_floats(o);
    if (state.count != (uint64_t)want)
        return ag_errorf(
            c->err, at,
            "optimizer '%s' had %llu state values in the checkpoint, the spec makes %lld", name,
            (unsigned long long)state.count, (long long)want);
    if (c->apply) {
        if (want) memcpy(o->state, state.v, (size_t)want * sizeof *o->state);
        o->step = ck_i64_impl(&step);
    }
    return AG_OK;
}

/* The optimizer a record optim.NAME.kind is of: NAME's bytes and length, or NULL. */
static const char *ck_kind_of_impl(const ck_rec *e, uint32_t *len)
{
    static const char pre[] = "optim.", post[] = ".kind";
    const uint32_t a = sizeof pre - 1, z = sizeof post - 1;
    if (e->nlen <= a + z || memcmp(e->name, pre, a) || memcmp(e->name + e->nlen - z, post, z))
        return NULL;
    *len = e->nlen - a - z;
    return e->name + a;
}

/* The optimizers, in the order saved: as many as the spec has, each of one of its names. */
static int ck_optims_impl(const ck_ctx *c, ck_run *run)
{
    const ag_loc at = ck_at_impl(c->path);
    ck_reader r = c->payload;
    ck_rec e;
    uint32_t len;
    uint64_t n = 0;
    while (ck_next_impl(&r, &e) > 0) n += ck_kind_of_impl(&e, &len) != NULL;
    if (n != (uint64_t)run->noptims)
        return ag_errorf(c->err, at, "checkpoint has %llu optimizers, the spec %d",
                         (unsigned long long)n, run->noptims);
    r = c->payload;
    while (ck_next_impl(&r, &e) > 0) {
        const char *name = ck_kind_of_impl(&e, &len);
        if (!name) continue;
        int j = 0;
        while (j < run->noptims &&
               !(strlen(run->optim_names[j]) == len && !memcmp(name, run->optim_names[j], len)))
            j++;
        if (j == run->noptims)
            return ag_errorf(c->err, at,
                             "checkpoint has optimizer '%.*s', the spec has none of that name",
                             ck_shown_impl(len), name);
        if (ck_optim_impl(c, run, j)) return AG_ERR;
    }
    return AG_OK;
}

/* The caller's fields, run.NAME: each in its type, of any count. */
static int ck_fields_impl(const ck_ctx *c, ck_run *run)
{
    for (int k = 0; k < run->nfields; k++) {
        const ck_field *f = &run->fields[k];
        ck_rec e;
        ck_key key = {"run.", f->name, ""};
        if (f->optional && !ck_present_impl(c, key)) continue;
        if (ck_want_impl(c, key, f->type, -1, &e)) return AG_ERR;
        if (!c->apply) continue;
        size_t size = ck_types[f->type].size;
        uint64_t n = e.count < (uint64_t)f->count ? e.count : (uint64_t)f->count;
        if (n) memcpy(f->ptr, e.v, (size_t)n * size);
        if ((int64_t)n < f->count)
            memset((char *)f->ptr + n * size, 0, (size_t)((uint64_t)f->count - n) * size);
    }
    return AG_OK;
}

/* The payload against run. The check pass (apply 0) and the restore pass read the
 * same records the same way, so the restore cannot fail once the check has passed. */
static int ck_payload_impl(const ck_ctx *c, ck_run *run)
{
    const ag_loc at = ck_at_impl(c->path);
    ck_rec hash, wcrc, epoch, step, cursor;
    if (ck_want_impl(c, ck_key1_impl("spec_hash"), CK_U8, -1, &hash) ||
        ck_want_impl(c, ck_key1_impl("weights_crc"), CK_U32, 1, &wcrc) ||
        ck_want_impl(c, ck_key1_impl("epoch"), CK_I64, 1, &epoch) ||
        ck_want_impl(c, ck_key1_impl("step"), CK_I64, 1, &step) ||
        ck_want_impl(c, ck_key1_impl("cursor"), CK_I64, 1, &cursor))
        return AG_ERR;
    if (run->spec_hash && !ck_text_eq_impl(&hash, run->spec_hash))
        return ag_errorf(c->err, at,
                         "checkpoint was made from a different spec (hash %.*s, this spec's %s)",
                         ck_shown_impl(hash.count), (const char *)hash.v, run->spec_hash);
    uint32_t crc;
    memcpy(&crc, wcrc.v, 4);
    if (crc != c->weights_crc)
        return ag_errorf(
            c->err, at, "does not belong to %s: saved with other weights (was a save interrupted?)",
            c->wpath);
    int64_t e = ck_i64_impl(&epoch), s = ck_i64_impl(&step), cur = ck_i64_impl(&cursor);
    if (e < 0 || e > INT_MAX || s < 0)
        return ag_errorf(c->err, at, "corrupt: epoch %lld, step %lld", (long long)e, (long long)s);
    if (ck_order_impl(c, run, cur) || ck_rngs_impl(c, run) || ck_optims_impl(c, run) ||
        ck_fields_impl(c, run))
        return AG_ERR;
    if (c->apply) {
        run->epoch = (int)e;
        run->step = s;
        run->cursor = cur;
    }
    return AG_OK;
}

/* The whole file into *buf, its frame checked: magic, version, length, checksum. */
static int ck_read_state_impl(const char *path, const char *wpath, unsigned char **buf,
                              ck_reader *r, ag_error *err)
{
    const ag_loc at = ck_at_impl(path);
    *buf = NULL;
    char why[128];
    int fd = ag_open_regular(path, O_RDONLY, why, sizeof why);
    if (fd < 0) return ag_errorf(err, at, "cannot open: %s", why);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ag_errorf(err, at, "cannot open: %s", strerror(errno));
    }
    size_t size = (size_t)st.st_size, got = 0;
    *buf = ag_xmalloc(size);
    int e = 0;
    while (got < size && !e) {
        ssize_t n = read(fd, *buf + got, size - got);
        if (n < 0 && errno != EINTR) e = errno;
        if (n == 0) e = EIO; /* the file shrank while being read */
        if (n > 0) got += (size_t)n;
    }
    close(fd);
    if (e) return ag_errorf(err, at, "cannot read: %s", strerror(e));
    if (size < CK_PREFIX + CK_SUFFIX || memcmp(*buf, ck_magic, sizeof ck_magic) != 0)
        return ag_errorf(err, at, "not an aigc-run state file");
    ck_reader h = {*buf, size, 8, 0};
    uint32_t version = (uint32_t)ck_get_impl(&h, 4);
    uint64_t len = ck_get_impl(&h, 8);
    /* The version comes first: another one may frame its payload otherwise. */
    if (version == 1)
        return ag_errorf(err, at,
                         "a checkpoint state of format version 1, which this build no longer "
                         "reads; its weights still load with --init %s",
                         wpath);
    if (version > CK_VERSION)
        return ag_errorf(err, at,
                         "a checkpoint state of format version %u, newer than this build's %d: "
                         "update aigc-run",
                         version, CK_VERSION);
    if (version != CK_VERSION) return ag_errorf(err, at, "corrupt: format version %u", version);
    if (len != size - CK_PREFIX - CK_SUFFIX)
        return ag_errorf(err, at, "truncated or padded: %zu bytes, the header says %llu", size,
                         (unsigned long long)len + CK_PREFIX + CK_SUFFIX);
    ck_reader tail = {*buf, size, size - CK_SUFFIX, 0};
    uint32_t crc = (uint32_t)ck_get_impl(&tail, 4);
    if (ck_crc_impl(ck_crc_impl(0, NULL, 0), *buf, size - CK_SUFFIX) != crc)
        return ag_errorf(err, at, "checksum mismatch: the file is corrupt");
    *r = (ck_reader){*buf, size - CK_SUFFIX, CK_PREFIX, 0};
    return AG_OK;
}

int ck_load(const char *dir, const char *name, ck_run *run, ag_error *err)
{
    AG_ASSERT(run->params && run->params->data);
    AG_ASSERT(run->noptims >= 0 && run->nrngs >= 0 && run->norder >= 0 && run->nfields >= 0);
    char wpath[4096], spath[4096];
    if (ck_path_impl(wpath, sizeof wpath, dir, name, ".safetensors", err) ||
        ck_path_impl(spath, sizeof spath, dir, name, ".state", err))
        return AG_ERR;
    sf_file f;
    if (sf_open(&f, wpath, err)) return AG_ERR;
    unsigned char *buf = NULL;
    ck_reader r;
    int rc = ck_match_impl(&f, run->params, 0, run->spec_name, err);
    int bad = rc == AG_OK ? ck_nonfinite_impl(&f, run->params, 0) : -1;
    if (bad >= 0)
        rc = ag_errorf(err, ck_at_impl(wpath), "%s holds non-finite values: the run had diverged when it was saved; "
                       "resume from an earlier checkpoint (train.checkpoint.keep keeps them)",
                       run->params->p[bad].name);
    if (rc == AG_OK) rc = ck_read_state_impl(spath, wpath, &buf, &r, err);
    if (rc == AG_OK) {
        ck_ctx c = {spath, wpath, r, ck_file_crc_impl(&f, run->params), 0, err};
        rc = ck_scan_impl(&c);
        if (rc == AG_OK) rc = ck_payload_impl(&c, run);
        /* Weights that fit, with a state that does not (other optimizers, another
         * data set): the spec the pair was saved from says why, as for the weights. */
        const char *saved = sf_meta_get(&f, "spec");
        if (rc != AG_OK && run->spec_name && saved && strcmp(saved, run->spec_name))
            ag_error_addf(err, " (a checkpoint of spec '%s', not of '%s')", saved, run->spec_name);
        if (rc == AG_OK) {
            ck_copy_weights_impl(&f, run->params, 0);
            c.apply = 1;
            int restored = ck_payload_impl(&c, run);
            AG_ASSERT(restored == AG_OK);
        }
    }
    free(buf);
    sf_close(&f);
    return rc;
}
