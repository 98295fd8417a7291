/*
 * test_safetensors.c — the safetensors writer and reader: a round trip, the bytes the
 * writer lays out, replacing a file only with a complete one, and a corpus of hostile
 * files, each refused with its exact message. The reader holds the header and the
 * data in buffers of their exact sizes, so under `make check` AddressSanitizer fails
 * any case that reads past what the file holds.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aigc/safetensors.h"
#include "tap.h"
#include "tmpdir.h"

/* ---- fixtures ---------------------------------------------------------------- */

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n) {
        ok(0, "write fixture %s", path);
        exit(1);
    }
    fclose(f);
}

/* The whole file; *n its size. NULL when it cannot be read. */
static unsigned char *read_bytes(const char *path, size_t *n)
{
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

/* A file with the given header length field, then header, then len data bytes 0..len-1. */
static const char *make_raw(uint64_t hlen, const char *header, size_t data_len)
{
    size_t h = strlen(header), n = 8 + h + data_len;
    unsigned char *b = ag_xmalloc(n);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(hlen >> (8 * k));
    memcpy(b + 8, header, h);
    for (size_t k = 0; k < data_len; k++) b[8 + h + k] = (unsigned char)k;
    const char *path = in_tmp("hostile.safetensors");
    write_bytes(path, b, n);
    free(b);
    return path;
}

static const char *make_st(const char *header, size_t data_len)
{
    return make_raw(strlen(header), header, data_len);
}

/* The file at path is refused with "path: want". */
static void refused(const char *path, const char *want, const char *what)
{
    sf_file f;
    ag_error err = {{0}};
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", path, want);
    int rc = sf_open(&f, path, &err);
    ok(rc == AG_ERR, "%s: refused", what);
    is_str(err.msg, full, "%s: message", what);
    ok(f.n == 0 && f.t == NULL && f.data == NULL, "%s: the file is left closed", what);
    sf_close(&f);
}

static void refused_header(const char *header, size_t data_len, const char *want, const char *what)
{
    refused(make_st(header, data_len), want, what);
}

/* One tensor "a" of shape [1] at [0, 4], for the syntax cases to break. */
#define ONE "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"

/* ---- round trip --------------------------------------------------------------- */

static void test_round_trip(void)
{
    float w[6] = {1.5f, -2.25f, 3.0f, 1e-30f, -0.0f, 65504.0f}, b[2] = {0.125f, -7.0f}, s = 42.0f;
    sf_tensor t[] = {
        {.name = "G.0.weight", .ndim = 2, .shape = {2, 3}, .data = w},
        {.name = "G.0.bias", .ndim = 1, .shape = {2}, .data = b},
        {.name = "scalar", .ndim = 0, .data = &s},
        {.name = "empty", .ndim = 2, .shape = {0, 5}, .data = NULL},
        {.name = "quote\" back\\ nl\n caf\xc3\xa9", .ndim = 1, .shape = {1}, .data = &s},
    };
    sf_meta m[] = {{"format", "pt"}, {"spec", "gan \"v2\""}};
    const char *path = in_tmp("round.safetensors");
    ag_error err = {{0}};
    if (!ok(sf_write(path, t, 5, m, 2, &err) == AG_OK, "write: %s", err.msg)) return;
    ok(access(in_tmp("round.safetensors.tmp"), F_OK) != 0, "no .tmp file is left behind");

    size_t n;
    unsigned char *bytes = read_bytes(path, &n);
    uint64_t hlen = 0;
    for (int k = 0; k < 8; k++) hlen |= (uint64_t)bytes[k] << (8 * k);
    ok((8 + hlen) % 8 == 0, "the data section starts 8-aligned (header %llu bytes)",
       (unsigned long long)hlen);
    ok(n == 8 + hlen + (6 + 2 + 1 + 0 + 1) * 4,
       "the file is the header and the data, nothing more");
    const char *want_start =
        "{\"__metadata__\":{\"format\":\"pt\",\"spec\":\"gan \\\"v2\\\"\"},"
        "\"G.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"G.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
        "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[32,36]},"
        "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[36,36]},"
        "\"quote\\\" back\\\\ nl\\u000a caf\xc3\xa9\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":[36,40]}}";
    size_t ws = strlen(want_start);
    ok(hlen >= ws && memcmp(bytes + 8, want_start, ws) == 0,
       "the header is the JSON expected, tensors in the order given");
    int spaces = 1;
    for (size_t k = 8 + ws; k < 8 + hlen; k++) spaces &= bytes[k] == ' ';
    ok(spaces && hlen - ws < 8, "the header is padded with fewer than 8 spaces");
    ok(memcmp(bytes + 8 + hlen, w, 24) == 0, "G.0.weight's floats follow the header, as they are");
    free(bytes);

    sf_file f;
    if (!ok(sf_open(&f, path, &err) == AG_OK, "read back: %s", err.msg)) return;
    ok(f.n == 5, "5 tensors");
    for (int k = 0; k < 5 && f.n == 5; k++) {
        const sf_tensor *r = &f.t[k];
        int same = strcmp(r->name, t[k].name) == 0 && r->ndim == t[k].ndim &&
                   memcmp(r->shape, t[k].shape, sizeof r->shape) == 0;
        int64_t numel = sf_numel(r);
        same = same && (numel == 0 || memcmp(r->data, t[k].data, (size_t)numel * 4) == 0);
        ok(same, "tensor %d comes back in order, with its name, shape and bits", k);
        ok(sf_get(&f, t[k].name) == r, "sf_get finds tensor %d by name", k);
    }
    ok(sf_get(&f, "G.1.weight") == NULL, "sf_get of an absent name is NULL");
    is_str(sf_meta_get(&f, "spec"), "gan \"v2\"", "metadata comes back unescaped");
    ok(sf_meta_get(&f, "absent") == NULL, "absent metadata is NULL");
    char shape[256];
    is_str(sf_shape_str(&f.t[0], shape, sizeof shape), "[2, 3]", "sf_shape_str");
    is_str(sf_shape_str(&f.t[2], shape, sizeof shape), "[]", "sf_shape_str of a scalar");
    sf_close(&f);
}

/* Files other writers may produce: escapes, whitespace, no metadata, any order. */
static void test_accepted(void)
{
    sf_file f;
    ag_error err = {{0}};
    const char *h =
        " {\n \"b\" : {\"data_offsets\": [4, 12], \"shape\": [2], \"dtype\": \"F32\"},\r\n"
        "\t\"\\u00e9\\u20ac\\ud83d\\ude00\\/\" : {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[12,12]},"
        "\"__metadata__\":{}}  ";
    if (ok(sf_open(&f, make_st(h, 12), &err) == AG_OK, "whitespace, escapes, keys in any order: %s",
           err.msg)) {
        ok(f.n == 3 && f.nmeta == 0, "3 tensors, no metadata");
        const sf_tensor *e = sf_get(&f, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/");
        ok(e && e->data == f.data, "\\u escapes and surrogate pairs decode to UTF-8");
        const sf_tensor *b = sf_get(&f, "b");
        unsigned char want[8] = {4, 5, 6, 7, 8, 9, 10, 11};
        ok(b && memcmp(b->data, want, 8) == 0, "b reads bytes [4, 12) of the data section");
        sf_close(&f);
    }
    if (ok(sf_open(&f, make_st("{}", 0), &err) == AG_OK, "an empty file of no tensors: %s",
           err.msg))
        sf_close(&f);
    if (ok(sf_open(&f, make_st(ONE "\n\t ", 4), &err) == AG_OK,
           "JSON whitespace after the object: %s", err.msg))
        sf_close(&f);
}

/* An existing file is replaced only by a complete one. */
static void test_replace(void)
{
    const char *path = in_tmp("replace.safetensors");
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    sf_tensor t = {.name = "x", .ndim = 1, .shape = {4}, .data = a};
    ag_error err = {{0}};
    sf_write(path, &t, 1, NULL, 0, &err);
    size_t n0, n1;
    unsigned char *before = read_bytes(path, &n0);

    /* A write that fails halfway (the file-size limit hit after 40 bytes). */
    struct rlimit old, lim = {40, 40};
    getrlimit(RLIMIT_FSIZE, &old);
    lim.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    t.data = b;
    setrlimit(RLIMIT_FSIZE, &lim);
    int rc = sf_write(path, &t, 1, NULL, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    ok(rc == AG_ERR, "a write cut short fails");
    char want[600];
    snprintf(want, sizeof want, "%s: cannot write: File too large", path);
    is_str(err.msg, want, "and says why");
    unsigned char *after = read_bytes(path, &n1);
    ok(n0 == n1 && memcmp(before, after, n0) == 0, "the previous file is untouched");
    ok(access(in_tmp("replace.safetensors.tmp"), F_OK) != 0, "the partial .tmp is removed");
    free(after);

    ok(sf_write(path, &t, 1, NULL, 0, &err) == AG_OK, "a complete write replaces it");
    sf_file f;
    if (ok(sf_open(&f, path, &err) == AG_OK, "and reads back")) {
        ok(memcmp(f.t[0].data, b, sizeof b) == 0, "with the new values");
        sf_close(&f);
    }
    free(before);

    snprintf(want, sizeof want,
             "%s/no/such/dir/x.safetensors: cannot write: No such file or directory", tmpdir);
    rc = sf_write(in_tmp("no/such/dir/x.safetensors"), &t, 1, NULL, 0, &err);
    ok(rc == AG_ERR, "writing into a missing directory fails");
    is_str(err.msg, want, "and says why");
}

/* ---- hostile files ------------------------------------------------------------- */

static void test_truncated(void)
{
    /* A valid file of two tensors, cut at several points. */
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    size_t hl = strlen(h), n;
    unsigned char *full = read_bytes(make_st(h, 12), &n);
    const char *path = in_tmp("cut.safetensors");
    char want[256];

    write_bytes(path, full, 0);
    refused(path, "not a safetensors file: 0 bytes, too short for the header length", "empty file");
    write_bytes(path, full, 5);
    refused(path, "not a safetensors file: 5 bytes, too short for the header length",
            "cut in the length");
    write_bytes(path, full, 8);
    snprintf(want, sizeof want, "header length %zu runs past the end of the file (8 bytes)", hl);
    refused(path, want, "cut after the length");
    write_bytes(path, full, 8 + hl / 2);
    snprintf(want, sizeof want, "header length %zu runs past the end of the file (%zu bytes)", hl,
             8 + hl / 2);
    refused(path, want, "cut in the header");
    write_bytes(path, full, 8 + hl);
    refused(path, "tensor 'a': data_offsets [0, 8] run past the data section (0 bytes)",
            "cut after the header");
    write_bytes(path, full, 8 + hl + 6);
    refused(path, "tensor 'a': data_offsets [0, 8] run past the data section (6 bytes)",
            "cut in the first tensor");
    write_bytes(path, full, 8 + hl + 11);
    refused(path, "tensor 'b': data_offsets [8, 12] run past the data section (11 bytes)",
            "cut in the last tensor");
    free(full);

    refused(make_raw((uint64_t)100 << 20 | 1, "{}", 0),
            "header length 104857601 is absurd (the limit is 104857600 bytes): not a safetensors file?",
            "a header over 100 MB");
    refused(make_raw(UINT64_MAX, "{}", 0),
            "header length 18446744073709551615 is absurd (the limit is 104857600 bytes): not a safetensors file?",
            "a header length of 2^64 - 1");
    refused(make_raw(3, "{}", 0), "header length 3 runs past the end of the file (10 bytes)",
            "a header length one past the end");
    refused(make_raw(1, "{}", 0), "bad header JSON: it ends where a string was expected",
            "a header length one short");

    char missing[600];
    snprintf(missing, sizeof missing, "%s/absent.safetensors", tmpdir);
    refused(missing, "cannot open: No such file or directory", "a missing file");
    refused(tmpdir, "cannot open: not a regular file (a directory)", "a directory");
}

static void test_json(void)
{
    refused_header("", 0,
                   "bad header JSON: it ends where '{' (the header is a JSON object) was expected",
                   "an empty header");
    refused_header("[]", 0, "bad header JSON at byte 0: expected '{' (the header is a JSON object)",
                   "an array at the top");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4,
                   "bad header JSON: it ends where ',' or '}' was expected", "an unclosed object");
    refused_header(
        ONE " x", 4,
        "bad header JSON at byte 55: expected nothing but spaces after the header object",
        "trailing garbage");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4,
                   "bad header JSON at byte 54: expected a string", "a trailing comma");
    refused_header("{\"a", 0, "bad header JSON: it ends where the end of a string was expected",
                   "an unterminated string");
    refused_header("{\"a\\q\":{}}", 0,
                   "bad header JSON at byte 4: expected an escape: one of \\\" \\\\ \\/ \\b \\f "
                   "\\n \\r \\t \\u",
                   "an unknown escape");
    refused_header("{\"a\\u12G4\":{}}", 0,
                   "bad header JSON at byte 7: expected four hex digits after \\u",
                   "a bad \\u escape");
    refused_header(
        "{\"a\nb\":{}}", 0,
        "bad header JSON at byte 3: expected a character (control characters must be escaped)",
        "a raw newline in a string");
    refused_header("{\"\\udc00\":{}}", 0,
                   "bad header JSON at byte 2: expected a high surrogate before a low one",
                   "a lone low surrogate");
    refused_header("{\"\\ud800x\":{}}", 0,
                   "bad header JSON at byte 2: expected a surrogate pair (\\uD800-\\uDBFF, then "
                   "\\uDC00-\\uDFFF)",
                   "a lone high surrogate");
    refused_header("{\"a\\u0000b\":{}}", 0,
                   "bad header JSON at byte 3: expected a character other than \\u0000",
                   "a NUL in a name");
    refused_header("{\"a\xff\":{}}", 0, "header is not valid UTF-8 at byte 3", "invalid UTF-8");
    refused_header("{\"\xc0\xaf\":{}}", 0, "header is not valid UTF-8 at byte 2", "overlong UTF-8");
    refused_header("{\"a\" {}}", 0, "bad header JSON at byte 5: expected ':'", "a missing colon");
    refused_header("{a:{}}", 0, "bad header JSON at byte 1: expected a string", "an unquoted key");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                   "bad header JSON at byte 29: expected an integer", "a fraction in a shape");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e3],\"data_offsets\":[0,4]}}", 4,
                   "bad header JSON at byte 29: expected an integer", "an exponent in a shape");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
                   "bad header JSON at byte 29: expected an integer without leading zeros",
                   "a leading zero");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-],\"data_offsets\":[0,4]}}", 4,
                   "bad header JSON at byte 29: expected an integer", "a lone minus");
    refused_header(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
        "bad header JSON at byte 29: integer too large", "an integer past int64");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1 2],\"data_offsets\":[0,4]}}", 4,
                   "bad header JSON at byte 31: expected ',' or ']'",
                   "a missing comma in an array");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}", 4,
                   "bad header JSON at byte 29: expected an integer", "a nested array");
    refused_header("{\"a\":{\"dtype\":{\"F32\":1},\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                   "bad header JSON at byte 14: expected a string",
                   "an object where a string belongs");
    refused_header("{\"a\":[1]}", 4,
                   "bad header JSON at byte 5: expected '{' (a tensor's description)",
                   "a tensor that is not an object");
    refused_header("{\"__metadata__\":\"pt\"}", 0,
                   "bad header JSON at byte 16: expected '{' (the __metadata__ object)",
                   "metadata not an object");
}

static void test_keys(void)
{
    refused_header("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                   "tensor 'a' lacks \"dtype\"", "a missing dtype");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
                   "tensor 'a' lacks \"shape\"", "a missing shape");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                   "tensor 'a' lacks \"data_offsets\"", "missing data_offsets");
    refused_header("{\"a\":{}}", 0, "tensor 'a' lacks \"dtype\"", "an empty tensor object");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,4]}}",
                   4, "tensor 'a': duplicate key \"shape\"", "a duplicate key in a tensor");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"offset\":0}}",
                   4, "tensor 'a': unknown key \"offset\"", "an unknown key in a tensor");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, "duplicate tensor 'a'", "a duplicate tensor");
    refused_header("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate \"__metadata__\"",
                   "two __metadata__");
    refused_header("{\"__metadata__\":{\"format\":\"pt\",\"format\":\"np\"}}", 0,
                   "duplicate __metadata__ key \"format\"", "a duplicate metadata key");
    refused_header("{\"__metadata__\":{\"epoch\":3}}", 0,
                   "__metadata__ value of \"epoch\" is not a string", "a number in the metadata");
    refused_header("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", 0,
                   "__metadata__ value of \"a\" is not a string", "an object in the metadata");
}

static void test_tensors(void)
{
    refused_header("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                   "tensor 'a' has dtype F16; only F32 tensors can be read", "an F16 tensor");
    refused_header("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                   "tensor 'a' has dtype BF16; only F32 tensors can be read", "a BF16 tensor");
    refused_header("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                   "tensor 'a' has unknown dtype \"f32\"", "an unknown dtype");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3,-2],\"data_offsets\":[0,4]}}", 4,
                   "tensor 'a': shape entry -2 is negative", "a negative shape entry");
    refused_header(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a': shape [4611686018427387904] has too many elements",
        "a shape whose bytes overflow int64");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648,2147483648],"
                   "\"data_offsets\":[0,4]}}",
                   4,
                   "tensor 'a': shape [2147483648, 2147483648, 2147483648] has too many elements",
                   "a shape whose product overflows");
    refused_header(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'a' has more than 8 dimensions", "nine dimensions");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4,
                   "tensor 'a': data_offsets must be [begin, end]", "one offset");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
                   "tensor 'a': data_offsets must be [begin, end]", "three offsets");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                   "tensor 'a': data_offsets [-4, 0] are negative", "a negative offset");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                   "tensor 'a': data_offsets [8, 4] end before they begin", "offsets reversed");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12,
                   "tensor 'a': data_offsets [0, 12] hold 12 bytes, but F32 [2, 2] needs 16",
                   "a header lying about a size");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 2,
                   "tensor 'a': data_offsets [0, 4] run past the data section (2 bytes)",
                   "offsets past the end");
    refused_header(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":[9223372036854775800,9223372036854775804]}}",
        4,
        "tensor 'a': data_offsets [9223372036854775800, 9223372036854775804] run past the data "
        "section (4 bytes)",
        "offsets near 2^63");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   12, "tensors 'a' and 'b' overlap in the data section", "overlapping tensors");
    refused_header("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                   8, "tensors 'b' and 'a' overlap in the data section",
                   "two tensors on the same bytes");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                   8, "tensors 'a' and 'z' overlap in the data section",
                   "an empty tensor inside another");
    refused_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                   12, "bytes [4, 8) of the data section belong to no tensor",
                   "a gap between tensors");
    refused_header("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                   "bytes [0, 4) of the data section belong to no tensor", "a gap at the start");
    refused_header(ONE, 8, "bytes [4, 8) of the data section belong to no tensor",
                   "bytes after the last tensor");
    refused_header("{}", 3, "bytes [0, 3) of the data section belong to no tensor",
                   "data but no tensors");
}

int main(void)
{
    tmp_open("sf");
    test_round_trip();
    test_accepted();
    test_replace();
    test_truncated();
    test_json();
    test_keys();
    test_tensors();
    tmp_close();
    return tap_done();
}
