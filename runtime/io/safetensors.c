/* safetensors.c — safetensors files written whole, read as hostile input (see
 * safetensors.h). */
#include "aigc/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aigc/afile.h"

/* Tensor data goes to and from disk as it lies in memory. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian: this file needs a byte swap on this machine"
#endif

static ag_loc sf_at_impl(const char *path) { return (ag_loc){path, 0, 0}; }

int64_t sf_numel(const sf_tensor *t)
{
    /* A file's empty tensor may have other sizes far beyond int64_t together
     * ([2^62, 2^62, 0]; sf_open checks the product only when it is not 0). */
    for (int k = 0; k < t->ndim; k++)
        if (t->shape[k] == 0) return 0;
    int64_t n = 1;
    for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
    return n;
}

const char *sf_shape_str(const sf_tensor *t, char *buf, size_t len)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
    return buf;
}

/* ---- writing ----------------------------------------------------------------- */

static void sf_puts_impl(ag_bytes *b, const char *s) { ag_bytes_put(b, s, strlen(s)); }

static void sf_put_int_impl(ag_bytes *b, long long v)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
    sf_puts_impl(b, num);
}

/* A JSON string: quotes, backslashes and control characters escaped; other bytes,
 * UTF-8 included, as they are. */
static void sf_put_string_impl(ag_bytes *b, const char *s)
{
    ag_bytes_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ag_bytes_put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            ag_bytes_put(b, esc, 6);
        } else {
            ag_bytes_put(b, (const char *)&c, 1);
        }
    }
    ag_bytes_put(b, "\"", 1);
}

static void sf_put_header_impl(ag_bytes *b, const sf_tensor *t, int n, const sf_meta *meta, int nmeta)
{
    sf_puts_impl(b, "{");
    if (nmeta > 0) {
        sf_puts_impl(b, "\"__metadata__\":{");
        for (int k = 0; k < nmeta; k++) {
            if (k) sf_puts_impl(b, ",");
            sf_put_string_impl(b, meta[k].key);
            sf_puts_impl(b, ":");
            sf_put_string_impl(b, meta[k].value);
        }
        sf_puts_impl(b, "}");
    }
    int64_t at = 0;
    for (int k = 0; k < n; k++) {
        if (k || nmeta > 0) sf_puts_impl(b, ",");
        sf_put_string_impl(b, t[k].name);
        sf_puts_impl(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[k].ndim; d++) {
            if (d) sf_puts_impl(b, ",");
            sf_put_int_impl(b, t[k].shape[d]);
        }
        int64_t end = at + sf_numel(&t[k]) * (int64_t)sizeof(float);
        sf_puts_impl(b, "],\"data_offsets\":[");
        sf_put_int_impl(b, at);
        sf_puts_impl(b, ",");
        sf_put_int_impl(b, end);
        sf_puts_impl(b, "]}");
        at = end;
    }
    sf_puts_impl(b, "}");
    /* The data section then starts 8-aligned, so that a reader that maps the file can
     * use the floats in place. */
    while ((8 + b->n) % 8 != 0) sf_puts_impl(b, " ");
}

int sf_write(const char *path, const sf_tensor *t, int n, const sf_meta *meta, int nmeta,
             ag_error *err)
{
    AG_ASSERT(n >= 0 && nmeta >= 0);
    for (int k = 0; k < n; k++) {
        AG_ASSERT(t[k].name && t[k].ndim >= 0 && t[k].ndim <= SF_MAX_DIMS);
        for (int d = 0; d < t[k].ndim; d++) AG_ASSERT(t[k].shape[d] >= 0);
        AG_ASSERT(t[k].data || sf_numel(&t[k]) == 0);
    }
    for (int k = 0; k < nmeta; k++)
        AG_ASSERT(meta[k].key && meta[k].value && strcmp(meta[k].key, "__metadata__") != 0);

    af_file f;
    if (af_begin(&f, path, err) != AG_OK) return AG_ERR;
    ag_bytes h = {0};
    sf_put_header_impl(&h, t, n, meta, nmeta);
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
    int rc = af_write(&f, len8, 8, err);
    if (rc == AG_OK) rc = af_write(&f, h.p, h.n, err);
    free(h.p);
    for (int k = 0; k < n && rc == AG_OK; k++)
        rc = af_write(&f, t[k].data, (size_t)sf_numel(&t[k]) * sizeof(float), err);
    return rc == AG_OK ? af_commit(&f, err) : AG_ERR;
}

/* ---- the header's JSON --------------------------------------------------------- */

/* The offset of the first byte that is not well-formed UTF-8 (overlong forms and
 * surrogates included), or n. */
static size_t sf_utf8_bad_impl(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

typedef struct sf_parser {
    const char *path;
    const unsigned char *s;
    size_t n, pos;
    int64_t data_len;
    sf_file *f;
    int cap, metacap;
    int64_t (*range)[2]; /* per tensor: its data_offsets */
    ag_bytes scratch; /* a string being decoded */
    ag_error *err;
} sf_parser;

static int sf_syntax_impl(sf_parser *p, const char *expected)
{
    if (p->pos >= p->n)
        return ag_errorf(p->err, sf_at_impl(p->path),
                         "bad header JSON: it ends where %s was expected", expected);
    return ag_errorf(p->err, sf_at_impl(p->path), "bad header JSON at byte %zu: expected %s",
                     p->pos, expected);
}

static void sf_ws_impl(sf_parser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                             p->s[p->pos] == '\r'))
        p->pos++;
}

static int sf_peek_impl(const sf_parser *p) { return p->pos < p->n ? p->s[p->pos] : -1; }

static int sf_expect_impl(sf_parser *p, char c, const char *expected)
{
    sf_ws_impl(p);
    if (sf_peek_impl(p) != (unsigned char)c) return sf_syntax_impl(p, expected);
    p->pos++;
    return AG_OK;
}

static int sf_hex4_impl(sf_parser *p, uint32_t *out)
{
    *out = 0;
    for (int k = 0; k < 4; k++) {
        int c = sf_peek_impl(p), v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else return sf_syntax_impl(p, "four hex digits after \\u");
        *out = *out << 4 | (uint32_t)v;
        p->pos++;
    }
    return AG_OK;
}

static void sf_put_utf8_impl(ag_bytes *b, uint32_t cp)
{
    static const unsigned char lead[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
    char u[4];
    int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (int k = n - 1; k > 0; k--, cp >>= 6) u[k] = (char)(0x80 | (cp & 0x3F));
    u[0] = (char)(lead[n] | cp);
    ag_bytes_put(b, u, (size_t)n);
}

/* The character an escape \c stands for, for the one-letter escapes; 0 otherwise. */
static char sf_escape_impl(int c)
{
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '/': return '/';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return 0;
    }
}

/* A \uXXXX escape (two for a surrogate pair), the backslash at esc; on error the
 * position reported is the escape's. */
static int sf_unicode_impl(sf_parser *p, size_t esc, uint32_t *cp)
{
    uint32_t lo;
    p->pos = esc + 2;
    if (sf_hex4_impl(p, cp)) return AG_ERR;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return p->pos = esc, sf_syntax_impl(p, "a high surrogate before a low one");
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        int paired = p->pos + 2 <= p->n && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u';
        if (paired) {
            p->pos += 2;
            paired = sf_hex4_impl(p, &lo) == AG_OK && lo >= 0xDC00 && lo <= 0xDFFF;
        }
        if (!paired) {
            p->pos = esc;
            return sf_syntax_impl(p, "a surrogate pair (\\uD800-\\uDBFF, then \\uDC00-\\uDFFF)");
        }
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    /* Names become C strings: a NUL inside would cut them short. */
    if (*cp == 0) return p->pos = esc, sf_syntax_impl(p, "a character other than \\u0000");
    return AG_OK;
}

/* A string, escapes decoded, copied into the file's arena. */
static int sf_string_impl(sf_parser *p, const char **out)
{
    sf_ws_impl(p);
    if (sf_peek_impl(p) != '"') return sf_syntax_impl(p, "a string");
    p->pos++;
    p->scratch.n = 0;
    for (;;) {
        int c = sf_peek_impl(p);
        if (c < 0) return sf_syntax_impl(p, "the end of a string");
        if (c == '"') break;
        if (c < 0x20) return sf_syntax_impl(p, "a character (control characters must be escaped)");
        if (c != '\\') {
            ag_bytes_put(&p->scratch, (const char *)&p->s[p->pos++], 1);
            continue;
        }
        size_t esc = p->pos++;
        char plain = sf_escape_impl(sf_peek_impl(p));
        uint32_t cp;
        if (plain) {
            ag_bytes_put(&p->scratch, &plain, 1);
            p->pos++;
        } else if (sf_peek_impl(p) == 'u') {
            if (sf_unicode_impl(p, esc, &cp)) return AG_ERR;
            sf_put_utf8_impl(&p->scratch, cp);
        } else {
            return sf_syntax_impl(p, "an escape: one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
        }
    }
    p->pos++;
    *out = ar_strndup(&p->f->arena, p->scratch.n ? (const char *)p->scratch.p : "", p->scratch.n);
    return AG_OK;
}

static int sf_int_impl(sf_parser *p, int64_t *out)
{
    sf_ws_impl(p);
    size_t start = p->pos;
    int neg = sf_peek_impl(p) == '-';
    if (neg) p->pos++;
    int c = sf_peek_impl(p);
    if (c < '0' || c > '9') return p->pos = start, sf_syntax_impl(p, "an integer");
    if (c == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return p->pos = start, sf_syntax_impl(p, "an integer without leading zeros");
    uint64_t v = 0;
    while ((c = sf_peek_impl(p)) >= '0' && c <= '9') {
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(c - '0')) / 10)
            return ag_errorf(p->err, sf_at_impl(p->path),
                             "bad header JSON at byte %zu: integer too large", start);
        v = v * 10 + (uint64_t)(c - '0');
        p->pos++;
    }
    if (c == '.' || c == 'e' || c == 'E') return p->pos = start, sf_syntax_impl(p, "an integer");
    *out = neg ? -(int64_t)v : (int64_t)v;
    return AG_OK;
}

/* [a, b, ...]: up to max integers into out; *count = max + 1 when there are more. */
static int sf_ints_impl(sf_parser *p, int64_t *out, int max, int *count)
{
    *count = 0;
    if (sf_expect_impl(p, '[', "'['")) return AG_ERR;
    sf_ws_impl(p);
    if (sf_peek_impl(p) == ']') return p->pos++, AG_OK;
    for (;;) {
        int64_t v = 0;
        if (sf_int_impl(p, &v)) return AG_ERR;
        if (*count == max) return *count = max + 1, AG_OK;
        out[(*count)++] = v;
        sf_ws_impl(p);
        if (sf_peek_impl(p) == ']') return p->pos++, AG_OK;
        if (sf_expect_impl(p, ',', "',' or ']'")) return AG_ERR;
    }
}

/* The dtypes of the format that this reader refuses, by name. */
static const char *const sf_refused_dtypes[] = {
    "F64", "F16", "BF16", "F8_E5M2", "F8_E4M3", "I64", "I32",
    "I16", "I8",  "U64",  "U32",     "U16",     "U8",  "BOOL",
};

static int sf_dtype_impl(sf_parser *p, const char *name, const char *dtype)
{
    if (strcmp(dtype, "F32") == 0) return AG_OK;
    for (size_t k = 0; k < AG_COUNTOF(sf_refused_dtypes); k++)
        if (strcmp(dtype, sf_refused_dtypes[k]) == 0)
            return ag_errorf(p->err, sf_at_impl(p->path),
                             "tensor '%s' has dtype %s; only F32 tensors can be read", name, dtype);
    return ag_errorf(p->err, sf_at_impl(p->path), "tensor '%s' has unknown dtype \"%s\"", name,
                     dtype);
}

static int sf_shape_impl(sf_parser *p, sf_tensor *t, int64_t *numel)
{
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 0)
            return ag_errorf(p->err, sf_at_impl(p->path),
                             "tensor '%s': shape entry %lld is negative", t->name,
                             (long long)t->shape[d]);
    *numel = 1;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0) return *numel = 0, AG_OK;
    /* The byte count, numel * 4, must fit in an int64 too. */
    const int64_t limit = INT64_MAX / (int64_t)sizeof(float);
    for (int d = 0; d < t->ndim; d++) {
        if (*numel > limit / t->shape[d]) {
            char s[256];
            return ag_errorf(p->err, sf_at_impl(p->path),
                             "tensor '%s': shape %s has too many elements", t->name,
                             sf_shape_str(t, s, sizeof s));
        }
        *numel *= t->shape[d];
    }
    return AG_OK;
}

/* One tensor's byte range against its shape and the data section. */
static int sf_range_impl(sf_parser *p, const sf_tensor *t, int64_t numel, const int64_t r[2])
{
    const char *path = p->path;
    long long b = r[0], e = r[1];
    if (b < 0 || e < 0)
        return ag_errorf(p->err, sf_at_impl(path),
                         "tensor '%s': data_offsets [%lld, %lld] are negative", t->name, b, e);
    if (b > e)
        return ag_errorf(p->err, sf_at_impl(path),
                         "tensor '%s': data_offsets [%lld, %lld] end before they begin", t->name, b,
                         e);
    int64_t need = numel * (int64_t)sizeof(float);
    if (e - b != need) {
        char s[256];
        return ag_errorf(
            p->err, sf_at_impl(path),
            "tensor '%s': data_offsets [%lld, %lld] hold %lld bytes, but F32 %s needs %lld",
            t->name, b, e, e - b, sf_shape_str(t, s, sizeof s), (long long)need);
    }
    if (e > p->data_len)
        return ag_errorf(
            p->err, sf_at_impl(path),
            "tensor '%s': data_offsets [%lld, %lld] run past the data section (%lld bytes)",
            t->name, b, e, (long long)p->data_len);
    return AG_OK;
}

enum { SF_HAS_DTYPE = 1, SF_HAS_SHAPE = 2, SF_HAS_OFFSETS = 4 };

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, each key exactly once. */
static int sf_tensor_impl(sf_parser *p, sf_tensor *t, int64_t range[2])
{
    static const char *const keys[] = {"dtype", "shape", "data_offsets"};
    const char *path = p->path;
    unsigned seen = 0;
    if (sf_expect_impl(p, '{', "'{' (a tensor's description)")) return AG_ERR;
    sf_ws_impl(p);
    if (sf_peek_impl(p) == '}') p->pos++;
    else
        for (;;) {
            const char *key, *dtype;
            int count;
            if (sf_string_impl(p, &key) || sf_expect_impl(p, ':', "':'")) return AG_ERR;
            unsigned bit = 0;
            for (size_t k = 0; k < AG_COUNTOF(keys); k++)
                if (strcmp(key, keys[k]) == 0) bit = 1u << k;
            if (!bit)
                return ag_errorf(p->err, sf_at_impl(path), "tensor '%s': unknown key \"%s\"",
                                 t->name, key);
            if (seen & bit)
                return ag_errorf(p->err, sf_at_impl(path), "tensor '%s': duplicate key \"%s\"",
                                 t->name, key);
            seen |= bit;
            if (bit == SF_HAS_DTYPE) {
                if (sf_string_impl(p, &dtype) || sf_dtype_impl(p, t->name, dtype)) return AG_ERR;
            } else if (bit == SF_HAS_SHAPE) {
                if (sf_ints_impl(p, t->shape, SF_MAX_DIMS, &count)) return AG_ERR;
                if (count > SF_MAX_DIMS)
                    return ag_errorf(p->err, sf_at_impl(path),
                                     "tensor '%s' has more than %d dimensions", t->name,
                                     SF_MAX_DIMS);
                t->ndim = count;
            } else {
                if (sf_ints_impl(p, range, 2, &count)) return AG_ERR;
                if (count != 2)
                    return ag_errorf(p->err, sf_at_impl(path),
                                     "tensor '%s': data_offsets must be [begin, end]", t->name);
            }
            sf_ws_impl(p);
            if (sf_peek_impl(p) == '}') {
                p->pos++;
                break;
            }
            if (sf_expect_impl(p, ',', "',' or '}'")) return AG_ERR;
        }
    for (size_t k = 0; k < AG_COUNTOF(keys); k++)
        if (!(seen & 1u << k))
            return ag_errorf(p->err, sf_at_impl(path), "tensor '%s' lacks \"%s\"", t->name,
                             keys[k]);
    int64_t numel = 0;
    if (sf_shape_impl(p, t, &numel)) return AG_ERR;
    return sf_range_impl(p, t, numel, range);
}

/* {"key": "value", ...}: strings only. */
static int sf_metadata_impl(sf_parser *p)
{
    sf_file *f = p->f;
    if (sf_expect_impl(p, '{', "'{' (the __metadata__ object)")) return AG_ERR;
    sf_ws_impl(p);
    if (sf_peek_impl(p) == '}') return p->pos++, AG_OK;
    for (;;) {
        const char *key, *value;
        if (sf_string_impl(p, &key) || sf_expect_impl(p, ':', "':'")) return AG_ERR;
        sf_ws_impl(p);
        if (sf_peek_impl(p) != '"')
            return ag_errorf(p->err, sf_at_impl(p->path),
                             "__metadata__ value of \"%s\" is not a string", key);
        if (sf_string_impl(p, &value)) return AG_ERR;
        if (f->nmeta == p->metacap) {
            p->metacap = p->metacap ? 2 * p->metacap : 8;
            f->meta = ag_xrealloc(f->meta, (size_t)p->metacap * sizeof *f->meta);
        }
        f->meta[f->nmeta++] = (sf_meta){key, value};
        sf_ws_impl(p);
        if (sf_peek_impl(p) == '}') return p->pos++, AG_OK;
        if (sf_expect_impl(p, ',', "',' or '}'")) return AG_ERR;
    }
}

/* The top object: tensors and at most one __metadata__; nothing after it but spaces. */
static int sf_header_impl(sf_parser *p)
{
    sf_file *f = p->f;
    int has_meta = 0;
    if (sf_expect_impl(p, '{', "'{' (the header is a JSON object)")) return AG_ERR;
    sf_ws_impl(p);
    if (sf_peek_impl(p) == '}') p->pos++;
    else
        for (;;) {
            const char *key;
            if (sf_string_impl(p, &key) || sf_expect_impl(p, ':', "':'")) return AG_ERR;
            if (strcmp(key, "__metadata__") == 0) {
                if (has_meta)
                    return ag_errorf(p->err, sf_at_impl(p->path), "duplicate \"__metadata__\"");
                has_meta = 1;
                if (sf_metadata_impl(p)) return AG_ERR;
            } else {
                if (f->n == p->cap) {
                    p->cap = p->cap ? 2 * p->cap : 16;
                    f->t = ag_xrealloc(f->t, (size_t)p->cap * sizeof *f->t);
                    p->range = ag_xrealloc(p->range, (size_t)p->cap * sizeof *p->range);
                }
                sf_tensor *t = &f->t[f->n];
                memset(t, 0, sizeof *t);
                t->name = key;
                f->n++;
                if (sf_tensor_impl(p, t, p->range[f->n - 1])) return AG_ERR;
            }
            sf_ws_impl(p);
            if (sf_peek_impl(p) == '}') {
                p->pos++;
                break;
            }
            if (sf_expect_impl(p, ',', "',' or '}'")) return AG_ERR;
        }
    sf_ws_impl(p);
    if (p->pos != p->n) return sf_syntax_impl(p, "nothing but spaces after the header object");
    return AG_OK;
}

/* ---- the layout ----------------------------------------------------------------- */

static int sf_by_name_impl(const void *a, const void *b, void *ctx)
{
    const sf_tensor *t = ctx;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

static int sf_by_range_impl(const void *a, const void *b, void *ctx)
{
    const int64_t(*r)[2] = ctx;
    const int64_t *x = r[*(const int *)a], *y = r[*(const int *)b];
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static int sf_by_key_impl(const void *a, const void *b)
{
    return strcmp(((const sf_meta *)a)->key, ((const sf_meta *)b)->key);
}

/* Names and keys distinct; the ranges tile the data section exactly. Sorting keeps
 * this O(n log n) however many tensors a header lists. */
static int sf_layout_impl(sf_parser *p)
{
    sf_file *f = p->f;
    const char *path = p->path;
    if (f->nmeta > 1) qsort(f->meta, (size_t)f->nmeta, sizeof *f->meta, sf_by_key_impl);
    for (int k = 1; k < f->nmeta; k++)
        if (strcmp(f->meta[k - 1].key, f->meta[k].key) == 0)
            return ag_errorf(p->err, sf_at_impl(path), "duplicate __metadata__ key \"%s\"",
                             f->meta[k].key);

    f->by_name = ag_xmalloc((size_t)f->n * sizeof *f->by_name);
    for (int k = 0; k < f->n; k++) f->by_name[k] = k;
    qsort_r(f->by_name, (size_t)f->n, sizeof *f->by_name, sf_by_name_impl, f->t);
    for (int k = 1; k < f->n; k++)
        if (strcmp(f->t[f->by_name[k - 1]].name, f->t[f->by_name[k]].name) == 0)
            return ag_errorf(p->err, sf_at_impl(path), "duplicate tensor '%s'",
                             f->t[f->by_name[k]].name);

    int *order = ag_xmalloc((size_t)f->n * sizeof *order);
    for (int k = 0; k < f->n; k++) order[k] = k;
    qsort_r(order, (size_t)f->n, sizeof *order, sf_by_range_impl, p->range);
    int64_t at = 0;
    int prev = -1, rc = AG_OK;
    for (int k = 0; k < f->n && rc == AG_OK; k++) {
        const int64_t *r = p->range[order[k]];
        if (r[0] < at)
            rc = ag_errorf(p->err, sf_at_impl(path),
                           "tensors '%s' and '%s' overlap in the data section", f->t[prev].name,
                           f->t[order[k]].name);
        else if (r[0] > at)
            rc = ag_errorf(p->err, sf_at_impl(path),
                           "bytes [%lld, %lld) of the data section belong to no tensor",
                           (long long)at, (long long)r[0]);
        at = r[1];
        if (r[1] > r[0]) prev = order[k];
    }
    free(order);
    if (rc == AG_OK && at < p->data_len)
        rc = ag_errorf(p->err, sf_at_impl(path),
                       "bytes [%lld, %lld) of the data section belong to no tensor", (long long)at,
                       (long long)p->data_len);
    return rc;
}

/* ---- reading ----------------------------------------------------------------- */

/* AG_OK, or AG_ERR with the reason: a read error or a file shorter than it was. */
static int sf_read_impl(int fd, void *buf, size_t n, const char *path, ag_error *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ag_errorf(err, sf_at_impl(path), "cannot read: %s", strerror(errno));
        if (r == 0) return ag_errorf(err, sf_at_impl(path), "file shrank while being read");
        got += (size_t)r;
    }
    return AG_OK;
}

/* Reads into memory rather than mapping: a mapped file that another process
 * truncates kills the reader with SIGBUS. */
static int sf_open_impl(sf_file *f, int fd, const char *path, ag_error *err)
{
    const ag_loc at = sf_at_impl(path);
    struct stat st;
    if (fstat(fd, &st) != 0) return ag_errorf(err, at, "cannot read: %s", strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8)
        return ag_errorf(err, at,
                         "not a safetensors file: %llu bytes, too short for the header length",
                         (unsigned long long)size);
    unsigned char len8[8];
    if (sf_read_impl(fd, len8, 8, path, err)) return AG_ERR;
    uint64_t hlen = 0;
    for (int k = 0; k < 8; k++) hlen |= (uint64_t)len8[k] << (8 * k);
    if (hlen > SF_MAX_HEADER)
        return ag_errorf(err, at, "header length %llu is absurd (the limit is %llu bytes): not a safetensors file?",
                         (unsigned long long)hlen, (unsigned long long)SF_MAX_HEADER);
    if (hlen > size - 8)
        return ag_errorf(err, at, "header length %llu runs past the end of the file (%llu bytes)",
                         (unsigned long long)hlen, (unsigned long long)size);

    sf_parser p = {.path = path,
                   .n = (size_t)hlen,
                   .data_len = (int64_t)(size - 8 - hlen),
                   .f = f,
                   .err = err};
    unsigned char *header = ag_xmalloc(p.n);
    p.s = header;
    int rc = sf_read_impl(fd, header, p.n, path, err);
    size_t bad = rc ? p.n : sf_utf8_bad_impl(header, p.n);
    if (rc == AG_OK && bad < p.n)
        rc = ag_errorf(err, at, "header is not valid UTF-8 at byte %zu", bad);
    if (rc == AG_OK) rc = sf_header_impl(&p);
    if (rc == AG_OK) rc = sf_layout_impl(&p);
    free(header);
    free(p.scratch.p);

    if (rc == AG_OK) {
        f->data = ag_xmalloc((size_t)p.data_len);
        rc = sf_read_impl(fd, f->data, (size_t)p.data_len, path, err);
    }
    /* Every range is F32, and the ranges tile the section from 0: each begins at a
     * multiple of 4, so each tensor's floats are aligned in the malloc'd section. */
    for (int k = 0; k < f->n && rc == AG_OK; k++) f->t[k].data = f->data + p.range[k][0] / 4;
    free(p.range);
    return rc;
}

int sf_open(sf_file *f, const char *path, ag_error *err)
{
    memset(f, 0, sizeof *f);
    ar_init(&f->arena, 0);
    f->path = ar_strdup(&f->arena, path);
    char why[128];
    int fd = ag_open_regular(path, O_RDONLY, why, sizeof why);
    if (fd < 0) {
        ag_errorf(err, sf_at_impl(path), "cannot open: %s", why);
        sf_close(f);
        return AG_ERR;
    }
    int rc = sf_open_impl(f, fd, path, err);
    close(fd);
    if (rc) sf_close(f);
    return rc;
}

const sf_tensor *sf_get(const sf_file *f, const char *name)
{
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0) return &f->t[f->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *sf_meta_get(const sf_file *f, const char *key)
{
    sf_meta want = {key, NULL};
    const sf_meta *m =
        f->nmeta ? bsearch(&want, f->meta, (size_t)f->nmeta, sizeof *f->meta, sf_by_key_impl)
                 : NULL;
    return m ? m->value : NULL;
}

void sf_close(sf_file *f)
{
    free(f->t);
    free(f->meta);
    free(f->by_name);
    free(f->data);
    ar_free(&f->arena);
    memset(f, 0, sizeof *f);
}
