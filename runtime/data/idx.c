/*
 * idx.c — reading IDX files through zlib (see idx.h for the format).
 *
 * gzread reads gzip and raw files alike, so there is one code path. The payload
 * buffer grows as bytes actually arrive instead of trusting the header's size: a
 * corrupt header that promises 16 GiB then costs one truncation message, not an
 * out-of-memory abort. A large gzip file's inflated bytes go to the cache (dcache.h),
 * and the next load reads them from there through the same path.
 */
#include "aigc/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aigc/afile.h"
#include "aigc/dcache.h"

/* Limits that no real data set comes near; beyond them the header is corrupt. The
 * count fits an int32 because the loader shuffles int32 indices. */
#define IDX_MAX_COUNT INT32_MAX
#define IDX_MAX_EXTENT 65536
#define IDX_MAX_BYTES ((int64_t)1 << 34)

#define IDX_FIRST_CHUNK ((int64_t)1 << 20)
#define IDX_GZ_BUFFER (1u << 18)

static const ag_loc idx_noloc = {0};

/* ---- reading through zlib ---------------------------------------------------- */

static int idx_gz_error_impl(gzFile f, const char *path, ag_error *err)
{
    int saved = errno, code;
    const char *msg = gzerror(f, &code);
    if (code == Z_ERRNO) return ag_errorf(err, idx_noloc, "%s: %s", path, strerror(saved));
    /* zlib starts its message with the name gzdopen gave the file, "<fd:N>: "; ours
     * starts with the path. */
    const char *named = strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ">: ") : NULL;
    if (named) msg = named + 3;
    return ag_errorf(err, idx_noloc, "%s: corrupt gzip data: %s", path, msg);
}

/* Reads up to n bytes; fewer only at the end of the data. Returns the count, or -1
 * with err set. */
static int64_t idx_read_impl(gzFile f, const char *path, uint8_t *buf, int64_t n,
                             ag_error *err)
{
    int64_t got = 0;
    while (got < n) {
        /* gzread counts in unsigned int. */
        unsigned chunk = n - got > (1 << 30) ? 1u << 30 : (unsigned)(n - got);
        int r = gzread(f, buf + got, chunk);
        if (r < 0) {
            idx_gz_error_impl(f, path, err);
            return -1;
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* ---- the header -------------------------------------------------------------- */

static const char *idx_type_name_impl(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
    }
}

/* "9000 images of 28x28" or "9000 labels": what the header promises, for messages. */
static void idx_describe_impl(const idx_array *a, char *buf, size_t n)
{
    int len = snprintf(buf, n, "%" PRId64 " %s", a->dims[0],
                       a->ndims == 1 ? "labels" : a->ndims == 2 ? "vectors of " : "images of ");
    for (int i = 1; i < a->ndims && len > 0 && (size_t)len < n; i++)
        len += snprintf(buf + len, n - (size_t)len, i > 1 ? "x%" PRId64 : "%" PRId64,
                        a->dims[i]);
}

/* What a type is called where it is the one wanted, and its element's size. */
static const char *idx_wanted_name_impl(int type) { return type == IDX_FLOAT ? "float32" : "unsigned bytes"; }
static int64_t idx_elem_size_impl(int type) { return type == IDX_FLOAT ? 4 : 1; }

/* The bytes of a's header: the magic and the dimension count, then 4 per dimension. */
static int64_t idx_header_bytes(const idx_array *a) { return 4 + 4 * (int64_t)a->ndims; }

/* The header from its first bytes: head holds `got` of them (all of them when there
 * are at least 4 + 4 * IDX_MAX_DIMS); its element type must be `want`. */
static int idx_parse_header_impl(const uint8_t *head, int64_t got, const char *path, int want, idx_array *a,
                                 ag_error *err)
{
    if (got < 4)
        return ag_errorf(err, idx_noloc, "%s: not an IDX file: only %" PRId64 " bytes", path,
                         got);
    if (head[0] != 0 || head[1] != 0)
        return ag_errorf(err, idx_noloc,
                         "%s: not an IDX file: starts with %02x %02x %02x %02x, "
                         "expected 00 00 %02x and a dimension count",
                         path, head[0], head[1], head[2], head[3], want);
    if (head[2] != want)
        return ag_errorf(err, idx_noloc,
                         "%s: IDX element type 0x%02x (%s) is not supported, "
                         "only %s (0x%02x)",
                         path, head[2], idx_type_name_impl(head[2]), idx_wanted_name_impl(want), want);
    a->type = want;
    a->ndims = head[3];
    if (a->ndims < 1 || a->ndims > IDX_MAX_DIMS)
        return ag_errorf(err, idx_noloc, "%s: IDX header has %d dimensions, expected 1 to %d",
                         path, a->ndims, IDX_MAX_DIMS);
    if (got < idx_header_bytes(a))
        return ag_errorf(err, idx_noloc,
                         "%s: truncated: the IDX header needs %" PRId64
                         " bytes, file holds %" PRId64,
                         path, idx_header_bytes(a), got);

    a->item_size = idx_elem_size_impl(want);
    for (int i = 0; i < a->ndims; i++) {
        const uint8_t *p = head + 4 + 4 * i;
        int64_t d = (int64_t)p[0] << 24 | (int64_t)p[1] << 16 | (int64_t)p[2] << 8 | p[3];
        int64_t lo = i == 0 ? 0 : 1, hi = i == 0 ? IDX_MAX_COUNT : IDX_MAX_EXTENT;
        if (d < lo || d > hi)
            return ag_errorf(err, idx_noloc,
                             "%s: IDX header gives dimension %d as %" PRId64
                             ", expected %" PRId64 " to %" PRId64,
                             path, i + 1, d, lo, hi);
        a->dims[i] = d;
        if (i > 0) a->item_size *= d;
    }
    /* count * item_size can pass 2^63 (2^31 * 2^48): compare by division instead. */
    if (a->item_size > IDX_MAX_BYTES ||
        (a->dims[0] > 0 && a->item_size > IDX_MAX_BYTES / a->dims[0])) {
        char what[128];
        idx_describe_impl(a, what, sizeof what);
        return ag_errorf(err, idx_noloc, "%s: IDX header promises %s, more than %" PRId64
                         " bytes", path, what, IDX_MAX_BYTES);
    }
    a->size = a->dims[0] * a->item_size;
    return AG_OK;
}

/* The header's bytes read from f (the dimension count, in the fourth, says how many
 * follow), then parsed. */
static int idx_read_header_impl(gzFile f, const char *path, int want, idx_array *a, ag_error *err)
{
    uint8_t head[4 + 4 * IDX_MAX_DIMS];
    int64_t got = idx_read_impl(f, path, head, 4, err);
    if (got < 0) return AG_ERR;
    if (got == 4 && head[3] >= 1 && head[3] <= IDX_MAX_DIMS) {
        int64_t more = idx_read_impl(f, path, head + 4, 4 * head[3], err);
        if (more < 0) return AG_ERR;
        got += more;
    }
    return idx_parse_header_impl(head, got, path, want, a, err);
}

/* ---- the payload ------------------------------------------------------------- */

/* Reads exactly a->size bytes, then makes sure nothing follows them. */
static int idx_read_payload_impl(gzFile f, const char *path, idx_array *a, ag_error *err)
{
    int64_t cap = a->size < IDX_FIRST_CHUNK ? a->size : IDX_FIRST_CHUNK, got = 0;
    uint8_t *buf = ag_xmalloc(cap > 0 ? (size_t)cap : 1);
    a->data = buf;
    for (;;) {
        int64_t r = idx_read_impl(f, path, buf + got, cap - got, err);
        if (r < 0) return AG_ERR;
        got += r;
        if (got < cap || cap == a->size) break;
        cap = cap > a->size / 2 ? a->size : 2 * cap;
        a->data = buf = ag_xrealloc(buf, (size_t)cap);
    }

    int64_t extra = 0;
    if (got == a->size) {
        uint8_t scratch[1 << 16];
        int64_t r;
        while ((r = idx_read_impl(f, path, scratch, sizeof scratch, err)) > 0) extra += r;
        if (r < 0) return AG_ERR;
    }
    if (got < a->size || extra > 0) {
        char what[128];
        idx_describe_impl(a, what, sizeof what);
        return ag_errorf(err, idx_noloc,
                         "%s: %s: header promises %s (%" PRId64 " bytes), file holds %" PRId64,
                         path, extra > 0 ? "trailing data" : "truncated", what, a->size,
                         got + extra);
    }
    /* All the bytes arrived, but a gzip file cut inside its trailer has lost the
     * checksum that vouches for them. */
    int code;
    gzerror(f, &code);
    if (code == Z_BUF_ERROR)
        return ag_errorf(err, idx_noloc, "%s: truncated: the gzip stream is cut short", path);
    return AG_OK;
}

/* The IDX header that a describes, as the file holds it; returns its length. */
static size_t idx_encode_header_impl(const idx_array *a, uint8_t *head)
{
    size_t n = 0;
    head[n++] = 0;
    head[n++] = 0;
    head[n++] = (uint8_t)a->type;
    head[n++] = (uint8_t)a->ndims;
    for (int i = 0; i < a->ndims; i++)
        for (int s = 24; s >= 0; s -= 8) head[n++] = (uint8_t)(a->dims[i] >> s);
    return n;
}

static int idx_parse_impl(gzFile f, const char *path, int want, idx_array *out, ag_error *err)
{
    int rc = idx_read_header_impl(f, path, want, out, err);
    if (rc == AG_OK) rc = idx_read_payload_impl(f, path, out, err);
    if (rc != AG_OK) idx_free(out);
    return rc;
}

/* The file from the cache, if its entry is there and its bytes are the ones it was
 * written with: a header and exactly the payload it promises, left in the entry's
 * mapping. Anything else (no entry, another version's, a damaged one) is a miss, not
 * an error: the source is read instead. */
static int idx_load_cached_impl(const dc_entry *e, int want, idx_array *out)
{
    size_t n;
    const uint8_t *bytes = dc_map(e, &n);
    if (!bytes) return AG_ERR;
    ag_error ignored;
    if (idx_parse_header_impl(bytes, (int64_t)n, e->path, want, out, &ignored) != AG_OK ||
        (size_t)(idx_header_bytes(out) + out->size) != n) {
        dc_unmap(bytes, n);
        memset(out, 0, sizeof *out);
        return AG_ERR;
    }
    out->data = bytes + idx_header_bytes(out);
    out->mapped = n;
    return AG_OK;
}

int idx_load(const char *path, idx_array *out, ag_error *err) { return idx_load_typed(path, IDX_UBYTE, out, err); }

int idx_load_typed(const char *path, int type, idx_array *out, ag_error *err)
{
    AG_ASSERT(type == IDX_UBYTE || type == IDX_FLOAT);
    memset(out, 0, sizeof *out);
    dc_entry e;
    int cache = dc_find(path, &e);
    if (cache && idx_load_cached_impl(&e, type, out) == AG_OK) return AG_OK;
    char why[128];
    int fd = ag_open_regular(path, O_RDONLY, why, sizeof why);
    if (fd < 0) return ag_errorf(err, idx_noloc, "%s: %s", path, why);
    errno = 0;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return ag_errorf(err, idx_noloc, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    }
    /* zlib's 8 KB input buffer returns from inflate every 14 KB of images; the
     * Fashion-MNIST training set inflates 10 % faster with this one. */
    gzbuffer(f, IDX_GZ_BUFFER);
    int rc = idx_parse_impl(f, path, type, out, err), inflated = !gzdirect(f);
    gzclose(f);
    if (rc == AG_OK && cache && inflated && out->size >= DC_MIN_BYTES) {
        uint8_t head[4 + 4 * IDX_MAX_DIMS];
        const void *parts[] = {head, out->data};
        size_t sizes[] = {idx_encode_header_impl(out, head), (size_t)out->size};
        dc_store(&e, parts, sizes, 2);
    }
    return rc;
}

void idx_free(idx_array *a)
{
    if (a->mapped)
        dc_unmap(a->data - idx_header_bytes(a), a->mapped);
    else
        free((void *)a->data);
    memset(a, 0, sizeof *a);
}

/* ---- writing ----------------------------------------------------------------- */

int idx_write_begin(idx_writer *w, const char *path, int type, int ndims, const int64_t *dims, ag_error *err)
{
    AG_ASSERT(type == IDX_UBYTE || type == IDX_FLOAT);
    AG_ASSERT(ndims >= 1 && ndims <= IDX_MAX_DIMS);
    idx_array a = {.ndims = ndims, .type = type};
    int64_t per_item = 1;
    for (int i = 0; i < ndims; i++) {
        AG_ASSERT(dims[i] >= (i == 0 ? 0 : 1) && dims[i] <= (i == 0 ? IDX_MAX_COUNT : IDX_MAX_EXTENT));
        a.dims[i] = dims[i];
        if (i > 0) per_item *= dims[i];
    }
    w->type = type;
    w->per_item = per_item;
    w->left = dims[0];
    uint8_t head[4 + 4 * IDX_MAX_DIMS];
    if (af_begin(&w->file, path, err)) return AG_ERR;
    return af_write(&w->file, head, idx_encode_header_impl(&a, head), err);
}

int idx_write_items(idx_writer *w, const void *items, int64_t n, ag_error *err)
{
    AG_ASSERT(n >= 0 && n <= w->left);
    w->left -= n;
    int64_t count = n * w->per_item;
    if (w->type == IDX_UBYTE) return af_write(&w->file, items, (size_t)count, err);
    /* Big-endian, a block of floats at a time. */
    const float *x = items;
    uint8_t buf[4096];
    for (int64_t at = 0; at < count;) {
        int64_t m = count - at < (int64_t)sizeof buf / 4 ? count - at : (int64_t)sizeof buf / 4;
        for (int64_t k = 0; k < m; k++, at++) {
            uint32_t u;
            memcpy(&u, &x[at], 4);
            for (int b = 0; b < 4; b++) buf[4 * k + b] = (uint8_t)(u >> (24 - 8 * b));
        }
        if (af_write(&w->file, buf, (size_t)(4 * m), err)) return AG_ERR;
    }
    return AG_OK;
}

int idx_write_end(idx_writer *w, ag_error *err)
{
    AG_ASSERT(w->left == 0);
    return af_commit(&w->file, err);
}

void idx_write_abort(idx_writer *w) { af_abort(&w->file); }

int idx_write(const char *path, int type, int ndims, const int64_t *dims, const void *data, ag_error *err)
{
    idx_writer w;
    if (idx_write_begin(&w, path, type, ndims, dims, err) || idx_write_items(&w, data, dims[0], err))
        return AG_ERR;
    return idx_write_end(&w, err);
}

/* ---- a split: images (or features) and labels --------------------------------- */

/* What a split's items are: their file's name, element type and dimensions. */
typedef struct idx_items {
    const char *stem;  /* {split}-STEM, raw or .gz */
    const char *noun;
    const char *magic; /* for messages */
    int type, ndims;
} idx_items;

static const idx_items idx_items_of[IDX_FILE_COUNT] = {
    [IDX_IMAGES] = {"images-idx3-ubyte", "images", "00 00 08 03", IDX_UBYTE, 3},
    [IDX_FEATURES] = {"features-idx2-float", "features", "00 00 0d 02", IDX_FLOAT, 2},
    [IDX_LABELS] = {"labels-idx1-ubyte", "labels", "00 00 08 01", IDX_UBYTE, 1},
};

int idx_split_path(const char *dir, const char *split, idx_file what, const char *ending, char *buf, size_t n)
{
    AG_ASSERT(what >= 0 && what < IDX_FILE_COUNT);
    int len = snprintf(buf, n, "%s/%s-%s%s", dir, split, idx_items_of[what].stem, ending);
    return len < 0 || (size_t)len >= n ? AG_ERR : AG_OK;
}

/* Finds dir/{split}-{stem}, raw or gzipped, into path. */
static int idx_find_impl(const char *dir, const char *split, idx_file what, char *path, size_t n,
                         ag_error *err)
{
    static const char *const suffixes[] = {"", ".gz"};
    const idx_items *it = &idx_items_of[what];
    for (size_t i = 0; i < AG_COUNTOF(suffixes); i++) {
        if (idx_split_path(dir, split, what, suffixes[i], path, n))
            return ag_errorf(err, idx_noloc, "%s: path too long", dir);
        if (access(path, F_OK) == 0) return AG_OK;
    }
    struct stat st;
    if (stat(dir, &st) != 0) return ag_errorf(err, idx_noloc, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return ag_errorf(err, idx_noloc, "%s: not a directory", dir);
    return ag_errorf(err, idx_noloc, "%s: no %s %s: looked for %s-%s and %s-%s.gz",
                     dir, split, it->noun, split, it->stem, split, it->stem);
}

static int idx_load_split_impl(const char *dir, const char *split, idx_file what, idx_dataset *d,
                               ag_error *err)
{
    const idx_items *it = &idx_items_of[what];
    char ipath[4096], lpath[4096];
    if (idx_find_impl(dir, split, what, ipath, sizeof ipath, err) != AG_OK ||
        idx_find_impl(dir, split, IDX_LABELS, lpath, sizeof lpath, err) != AG_OK)
        return AG_ERR;

    if (idx_load_typed(ipath, it->type, &d->images, err) != AG_OK) return AG_ERR;
    if (d->images.ndims != it->ndims)
        return ag_errorf(err, idx_noloc,
                         "%s: expected %s (IDX magic %s), found a %d-dimensional "
                         "IDX file", ipath, it->noun, it->magic, d->images.ndims);
    if (d->images.dims[0] == 0) return ag_errorf(err, idx_noloc, "%s: holds no %s", ipath, it->noun);

    if (idx_load(lpath, &d->labels, err) != AG_OK) return AG_ERR;
    if (d->labels.ndims != 1)
        return ag_errorf(err, idx_noloc,
                         "%s: expected labels (IDX magic 00 00 08 01), found a %d-dimensional "
                         "IDX file", lpath, d->labels.ndims);
    if (d->labels.dims[0] != d->images.dims[0])
        return ag_errorf(err, idx_noloc, "%s holds %" PRId64 " %s but %s holds %" PRId64
                         " labels", ipath, d->images.dims[0], it->noun, lpath, d->labels.dims[0]);

    d->count = d->images.dims[0];
    d->rows = it->ndims == 3 ? (int)d->images.dims[1] : 1;
    d->cols = (int)d->images.dims[it->ndims - 1];
    for (int64_t i = 0; i < d->count; i++)
        if (d->labels.data[i] >= d->classes) d->classes = d->labels.data[i] + 1;
    return AG_OK;
}

static int idx_load_items_impl(const char *dir, const char *split, idx_file what, idx_dataset *out,
                               ag_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = idx_load_split_impl(dir, split, what, out, err);
    if (rc != AG_OK) idx_dataset_free(out);
    return rc;
}

int idx_load_split(const char *dir, const char *split, idx_dataset *out, ag_error *err)
{
    return idx_load_items_impl(dir, split, IDX_IMAGES, out, err);
}

int idx_load_features(const char *dir, const char *split, idx_dataset *out, ag_error *err)
{
    return idx_load_items_impl(dir, split, IDX_FEATURES, out, err);
}

void idx_dataset_free(idx_dataset *d)
{
    idx_free(&d->images);
    idx_free(&d->labels);
    memset(d, 0, sizeof *d);
}
