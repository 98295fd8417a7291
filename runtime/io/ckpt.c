/* ckpt.c — checkpoints: the weights as safetensors, the rest in a checksummed state
 * file (see ckpt.h for both formats). */
#include "aigc/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aigc/afile.h"
#include "aigc/safetensors.h"

/* The optimizer state's floats go to and from disk as they lie in memory. */
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

const char *ck_run_weights(const char *spec_name, char *buf, size_t n)
{
    snprintf(buf, n, "runs/%s/last.safetensors", spec_name);
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

/* ---- the state file: writing ------------------------------------------------------ */

static void ck_le_impl(unsigned char *out, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++) out[k] = (unsigned char)(v >> (8 * k));
}

static void ck_u32_impl(ag_bytes *b, uint32_t v)
{
    unsigned char x[4];
    ck_le_impl(x, v, 4);
    ag_bytes_put(b, x, 4);
}

static void ck_u64_impl(ag_bytes *b, uint64_t v)
{
    unsigned char x[8];
    ck_le_impl(x, v, 8);
    ag_bytes_put(b, x, 8);
}

static void ck_f32_impl(ag_bytes *b, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    ck_u32_impl(b, bits);
}

static void ck_f64_impl(ag_bytes *b, double f)
{
    uint64_t bits;
    memcpy(&bits, &f, 8);
    ck_u64_impl(b, bits);
}

static void ck_str_impl(ag_bytes *b, const char *s)
{
    size_t n = strlen(s);
    AG_ASSERT(n <= UINT32_MAX);
    ck_u32_impl(b, (uint32_t)n);
    ag_bytes_put(b, s, n);
}

/* The whole state file, in the layout of ckpt.h. */
static void ck_state_bytes_impl(ag_bytes *b, const ck_run *run)
{
    ag_bytes_put(b, ck_magic, sizeof ck_magic);
    ck_u32_impl(b, CK_VERSION);
    ck_u64_impl(b, 0); /* the payload length, known at the end */

    ck_str_impl(b, run->spec_hash);
    ck_u32_impl(b, ck_weights_crc_impl(run->params));
    ck_u64_impl(b, (uint64_t)(int64_t)run->epoch);
    ck_u64_impl(b, (uint64_t)run->step);
    ck_u64_impl(b, (uint64_t)run->cursor);
    ck_u64_impl(b, (uint64_t)run->norder);
    for (int64_t k = 0; k < run->norder; k++) ck_u32_impl(b, (uint32_t)run->order[k]);
    ck_u32_impl(b, (uint32_t)run->nrngs);
    for (int k = 0; k < run->nrngs; k++) {
        const rng *r = run->rngs[k];
        for (int w = 0; w < 4; w++) ck_u64_impl(b, r->s[w]);
        ck_u32_impl(b, (uint32_t)r->has_spare);
        ck_f32_impl(b, r->spare);
    }
    ck_u32_impl(b, (uint32_t)run->noptims);
    for (int k = 0; k < run->noptims; k++) {
        const opt_optimizer *o = &run->optims[k];
        ck_str_impl(b, run->optim_names[k]);
        ck_u32_impl(b, (uint32_t)o->kind);
        ck_u64_impl(b, (uint64_t)o->step);
        ck_u32_impl(b, (uint32_t)o->ngroups);
        for (int g = 0; g < o->ngroups; g++) ck_f64_impl(b, o->groups[g].lr);
        int64_t n = opt_state_floats(o);
        ck_u64_impl(b, (uint64_t)n);
        ag_bytes_put(b, o->state, (size_t)n * sizeof *o->state);
    }
    ck_u64_impl(b, run->extra_len);
    if (run->extra_len) ag_bytes_put(b, run->extra, run->extra_len);

    ck_le_impl(b->p + 12, b->n - CK_PREFIX, 8);
    ck_u32_impl(b, ck_crc_impl(ck_crc_impl(0, NULL, 0), b->p, b->n));
}

int ck_save(const char *dir, const char *name, const ck_run *run, ag_error *err)
{
    AG_ASSERT(run->params && run->params->data && run->spec_name && run->spec_hash);
    AG_ASSERT(run->noptims >= 0 && run->nrngs >= 0 && run->norder >= 0);
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

static uint32_t ck_get_u32_impl(ck_reader *r) { return (uint32_t)ck_get_impl(r, 4); }
static uint64_t ck_get_u64_impl(ck_reader *r) { return ck_get_impl(r, 8); }

static float ck_get_f32_impl(ck_reader *r)
{
    uint32_t bits = ck_get_u32_impl(r);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static double ck_get_f64_impl(ck_reader *r)
{
    uint64_t bits = ck_get_u64_impl(r);
    double f;
    memcpy(&f, &bits, 8);
    return f;
}

/* A string in place (not NUL-terminated): its bytes and length. */
static const char *ck_get_str_impl(ck_reader *r, uint32_t *len)
{
    *len = ck_get_u32_impl(r);
    if (!ck_has_impl(r, *len)) return *len = 0, "";
    const char *s = (const char *)r->p + r->pos;
    r->pos += *len;
    return s;
}

static int ck_str_eq_impl(const char *s, uint32_t len, const char *z)
{
    return strlen(z) == len && memcmp(s, z, len) == 0;
}

typedef struct ck_ctx {
    const char *path; /* the state file */
    const char *wpath; /* the weights file */
    uint32_t weights_crc; /* of the weights file */
    int apply; /* 0: check only; 1: restore too */
    ag_error *err;
} ck_ctx;

static int ck_short_impl(const ck_ctx *c)
{
    return ag_errorf(c->err, ck_at_impl(c->path),
                     "corrupt: a record runs past the end of the file");
}

/* The data order: the run's length, a permutation, the cursor inside it. */
static int ck_order_impl(ck_reader *r, const ck_ctx *c, ck_run *run, int64_t cursor)
{
    const ag_loc at = ck_at_impl(c->path);
    uint64_t n = ck_get_u64_impl(r);
    if (r->short_read) return ck_short_impl(c);
    if (n != (uint64_t)run->norder)
        return ag_errorf(c->err, at, "checkpoint's data order has %llu entries, the data set %lld",
                         (unsigned long long)n, (long long)run->norder);
    if (cursor < 0 || (uint64_t)cursor > n)
        return ag_errorf(c->err, at,
                         "corrupt: data cursor %lld is outside the data order (%llu entries)",
                         (long long)cursor, (unsigned long long)n);
    if (!ck_has_impl(r, n * 4)) return ck_short_impl(c);
    if (c->apply) {
        for (uint64_t k = 0; k < n; k++) run->order[k] = (int32_t)ck_get_u32_impl(r);
        return AG_OK;
    }
    /* fill_batch indexes the data set with these: each must be in range, once. */
    unsigned char *seen = ag_xcalloc(n ? n : 1, 1);
    int rc = AG_OK;
    for (uint64_t k = 0; k < n && rc == AG_OK; k++) {
        uint32_t v = ck_get_u32_impl(r);
        if (v >= n || seen[v])
            rc = ag_errorf(c->err, at, "corrupt: the data order is not a permutation");
        else seen[v] = 1;
    }
    free(seen);
    return rc;
}

static int ck_rngs_impl(ck_reader *r, const ck_ctx *c, ck_run *run)
{
    uint32_t n = ck_get_u32_impl(r);
    if (r->short_read) return ck_short_impl(c);
    if (n != (uint32_t)run->nrngs)
        return ag_errorf(c->err, ck_at_impl(c->path),
                         "checkpoint has %u random generators, the run %d", n, run->nrngs);
    for (uint32_t k = 0; k < n; k++) {
        rng g;
        for (int w = 0; w < 4; w++) g.s[w] = ck_get_u64_impl(r);
        uint32_t spare = ck_get_u32_impl(r);
        g.has_spare = (int)spare;
        g.spare = ck_get_f32_impl(r);
        if (r->short_read) return ck_short_impl(c);
        if (spare > 1)
            return ag_errorf(c->err, ck_at_impl(c->path), "corrupt: random generator %u", k);
        if (c->apply) *run->rngs[k] = g;
    }
    return AG_OK;
}

static int ck_optim_impl(ck_reader *r, const ck_ctx *c, ck_run *run, unsigned char *matched)
{
    const ag_loc at = ck_at_impl(c->path);
    uint32_t len;
    const char *name = ck_get_str_impl(r, &len);
    uint32_t kind = ck_get_u32_impl(r);
    int64_t step = (int64_t)ck_get_u64_impl(r);
    uint32_t ngroups = ck_get_u32_impl(r);
    if (r->short_read) return ck_short_impl(c);
    int j = 0;
    while (j < run->noptims && !ck_str_eq_impl(name, len, run->optim_names[j])) j++;
    if (j == run->noptims)
        return ag_errorf(c->err, at,
                         "checkpoint has optimizer '%.*s', the spec has none of that name",
                         (int)len, name);
    if (matched[j])
        return ag_errorf(c->err, at, "corrupt: optimizer '%.*s' appears twice", (int)len, name);
    matched[j] = 1;
    opt_optimizer *o = &run->optims[j];
    if (kind >= OPT_COUNT)
        return ag_errorf(c->err, at, "corrupt: optimizer '%.*s' has kind %u", (int)len, name, kind);
    if (kind != o->kind)
        return ag_errorf(c->err, at, "optimizer '%.*s' was %s in the checkpoint, the spec says %s",
                         (int)len, name, opt_kind_name((opt_kind)kind), opt_kind_name(o->kind));
    if (step < 0)
        return ag_errorf(c->err, at, "corrupt: optimizer '%.*s' has a negative step", (int)len,
                         name);
    if (ngroups != (uint32_t)o->ngroups)
        return ag_errorf(
            c->err, at,
            "optimizer '%.*s' had %u parameter groups in the checkpoint, the spec makes %d",
            (int)len, name, ngroups, o->ngroups);
    for (uint32_t g = 0; g < ngroups; g++) {
        double lr = ck_get_f64_impl(r);
        if (r->short_read) return ck_short_impl(c);
        if (!(lr >= 0))
            return ag_errorf(c->err, at, "corrupt: optimizer '%.*s' has learning rate %g", (int)len,
                             name, lr);
        if (c->apply) opt_set_lr(o, (int)g, lr);
    }
    uint64_t nstate = ck_get_u64_impl(r);
    int64_t want = opt_state_floats(o);
    if (r->short_read) return ck_short_impl(c);
    if (nstate != (uint64_t)want)
        return ag_errorf(
            c->err, at,
            "optimizer '%.*s' had %llu state values in the checkpoint, the spec makes %lld",
            (int)len, name, (unsigned long long)nstate, (long long)want);
    if (!ck_has_impl(r, nstate * 4)) return ck_short_impl(c);
    if (!c->apply) return r->pos += (size_t)nstate * 4, AG_OK;
    memcpy(o->state, r->p + r->pos, (size_t)nstate * sizeof *o->state);
    r->pos += (size_t)nstate * sizeof *o->state;
    o->step = step;
    return AG_OK;
}

/* The payload against run. The check pass (apply 0) and the restore pass read the
 * same bytes the same way, so the restore cannot fail once the check has passed. */
static int ck_payload_impl(ck_reader *r, const ck_ctx *c, ck_run *run)
{
    const ag_loc at = ck_at_impl(c->path);
    uint32_t hlen;
    const char *hash = ck_get_str_impl(r, &hlen);
    uint32_t wcrc = ck_get_u32_impl(r);
    int64_t epoch = (int64_t)ck_get_u64_impl(r), step = (int64_t)ck_get_u64_impl(r);
    int64_t cursor = (int64_t)ck_get_u64_impl(r);
    if (r->short_read) return ck_short_impl(c);
    if (run->spec_hash && !ck_str_eq_impl(hash, hlen, run->spec_hash))
        return ag_errorf(c->err, at,
                         "checkpoint was made from a different spec (hash %.*s, this spec's %s)",
                         (int)hlen, hash, run->spec_hash);
    if (wcrc != c->weights_crc)
        return ag_errorf(
            c->err, at, "does not belong to %s: saved with other weights (was a save interrupted?)",
            c->wpath);
    if (epoch < 0 || epoch > INT_MAX || step < 0)
        return ag_errorf(c->err, at, "corrupt: epoch %lld, step %lld", (long long)epoch,
                         (long long)step);
    if (ck_order_impl(r, c, run, cursor) || ck_rngs_impl(r, c, run)) return AG_ERR;

    uint32_t n = ck_get_u32_impl(r);
    if (r->short_read) return ck_short_impl(c);
    if (n != (uint32_t)run->noptims)
        return ag_errorf(c->err, at, "checkpoint has %u optimizers, the spec %d", n, run->noptims);
    unsigned char *matched = ag_xcalloc(n ? n : 1, 1);
    int rc = AG_OK;
    for (uint32_t k = 0; k < n && rc == AG_OK; k++) rc = ck_optim_impl(r, c, run, matched);
    free(matched);
    if (rc) return AG_ERR;
    uint64_t extra_len = ck_get_u64_impl(r);
    if (r->short_read) return ck_short_impl(c);
    if (extra_len != run->extra_len)
        return ag_errorf(c->err, at, "the checkpoint's run record has %llu bytes, this run keeps %llu",
                         (unsigned long long)extra_len, (unsigned long long)run->extra_len);
    if (!ck_has_impl(r, extra_len)) return ck_short_impl(c);
    if (c->apply && extra_len) memcpy(run->extra, r->p + r->pos, extra_len);
    r->pos += (size_t)extra_len;
    if (r->pos != r->n)
        return ag_errorf(c->err, at, "corrupt: %zu bytes after the last record", r->n - r->pos);
    if (c->apply) {
        run->epoch = (int)epoch;
        run->step = step;
        run->cursor = cursor;
    }
    return AG_OK;
}

/* The whole file into *buf, its frame checked: magic, version, length, checksum. */
static int ck_read_state_impl(const char *path, unsigned char **buf, ck_reader *r, ag_error *err)
{
    const ag_loc at = ck_at_impl(path);
    *buf = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ag_errorf(err, at, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ag_errorf(err, at, "not a regular file");
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
    uint32_t version = ck_get_u32_impl(&h);
    uint64_t len = ck_get_u64_impl(&h);
    if (version != CK_VERSION)
        return ag_errorf(err, at, "state file version %u; this aigc-run reads version %d", version,
                         CK_VERSION);
    if (len != size - CK_PREFIX - CK_SUFFIX)
        return ag_errorf(err, at, "truncated or padded: %zu bytes, the header says %llu", size,
                         (unsigned long long)len + CK_PREFIX + CK_SUFFIX);
    ck_reader tail = {*buf, size, size - CK_SUFFIX, 0};
    if (ck_crc_impl(ck_crc_impl(0, NULL, 0), *buf, size - CK_SUFFIX) != ck_get_u32_impl(&tail))
        return ag_errorf(err, at, "checksum mismatch: the file is corrupt");
    *r = (ck_reader){*buf, size - CK_SUFFIX, CK_PREFIX, 0};
    return AG_OK;
}

int ck_load(const char *dir, const char *name, ck_run *run, ag_error *err)
{
    AG_ASSERT(run->params && run->params->data);
    AG_ASSERT(run->noptims >= 0 && run->nrngs >= 0 && run->norder >= 0);
    char wpath[4096], spath[4096];
    if (ck_path_impl(wpath, sizeof wpath, dir, name, ".safetensors", err) ||
        ck_path_impl(spath, sizeof spath, dir, name, ".state", err))
        return AG_ERR;
    sf_file f;
    if (sf_open(&f, wpath, err)) return AG_ERR;
    unsigned char *buf = NULL;
    ck_reader r;
    int rc = ck_match_impl(&f, run->params, 0, run->spec_name, err);
    if (rc == AG_OK) rc = ck_read_state_impl(spath, &buf, &r, err);
    if (rc == AG_OK) {
        ck_ctx c = {spath, wpath, ck_file_crc_impl(&f, run->params), 0, err};
        ck_reader again = r;
        rc = ck_payload_impl(&r, &c, run);
        if (rc == AG_OK) {
            ck_copy_weights_impl(&f, run->params, 0);
            c.apply = 1;
            int restored = ck_payload_impl(&again, &c, run);
            AG_ASSERT(restored == AG_OK);
        }
    }
    free(buf);
    sf_close(&f);
    return rc;
}
