/*
 * test_idx.c — the IDX reader: the committed MNIST subset loads as documented, and
 * every malformed file ends in its exact message. Fixtures are built in a temp dir.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aigc/idx.h"
#include "tap.h"
#include "tmpdir.h"

/* ---- fixtures ---------------------------------------------------------------- */

/* An IDX header for ndims dims followed by payload bytes i * 7 mod 256. */
static size_t make_idx(uint8_t *buf, int type, int ndims, const uint32_t *dims,
                       size_t payload)
{
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = (uint8_t)type;
    buf[n++] = (uint8_t)ndims;
    for (int i = 0; i < ndims; i++)
        for (int s = 24; s >= 0; s -= 8) buf[n++] = (uint8_t)(dims[i] >> s);
    for (size_t i = 0; i < payload; i++) buf[n++] = (uint8_t)(i * 7);
    return n;
}

static void write_raw(const char *path, const uint8_t *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static size_t write_gz(const char *path, const uint8_t *buf, size_t n)
{
    gzFile f = gzopen(path, "wb9");
    if (!f || gzwrite(f, buf, (unsigned)n) != (int)n || gzclose(f) != Z_OK) {
        perror(path);
        exit(2);
    }
    struct stat st;
    stat(path, &st);
    return (size_t)st.st_size;
}

static uint8_t scratch[1 << 16];

/* Labels 0..count-1 mod 10 as a 1-d IDX file. */
static size_t make_labels(uint8_t *buf, uint32_t count)
{
    size_t n = make_idx(buf, 0x08, 1, &count, 0);
    for (uint32_t i = 0; i < count; i++) buf[n++] = (uint8_t)(i % 10);
    return n;
}

/* Loads path, expecting failure with exactly want. */
static void expect_load_error(const char *path, const char *want, const char *what)
{
    idx_array a;
    ag_error err = {{0}};
    int rc = idx_load(path, &a, &err);
    ok(rc == AG_ERR && a.data == NULL, "%s: refused", what);
    is_str(err.msg, want, "%s: message", what);
}

/* ---- the committed subset ---------------------------------------------------- */

static void test_committed_subset(void)
{
    /* The per-digit counts scripts/mnist-to-idx.js printed when it made the files. */
    static const int train_digits[10] = {907, 1031, 901, 922, 884, 783, 903, 961, 823, 885};
    static const int test_digits[10] = {94, 96, 90, 110, 96, 80, 111, 109, 121, 93};
    static const struct {
        const char *split;
        int count;
        const int *digits;
    } splits[] = {{"train", 9000, train_digits}, {"t10k", 1000, test_digits}};

    for (size_t s = 0; s < AG_COUNTOF(splits); s++) {
        idx_dataset d;
        ag_error err = {{0}};
        int rc = idx_load_split("data/mnist", splits[s].split, &d, &err);
        if (!ok(rc == AG_OK, "data/mnist %s loads", splits[s].split)) {
            diag("%s", err.msg);
            continue;
        }
        ok(d.count == splits[s].count && d.rows == 28 && d.cols == 28,
           "%s: %d images of 28x28 (got %lld of %dx%d)", splits[s].split, splits[s].count,
           (long long)d.count, d.rows, d.cols);
        ok(d.images.size == d.count * 784 && d.labels.size == d.count,
           "%s: sizes agree with the header", splits[s].split);
        ok(d.classes == 10, "%s: labels are 0..9", splits[s].split);

        int hist[256] = {0}, same = 1;
        for (int64_t i = 0; i < d.count; i++) hist[d.labels.data[i]]++;
        for (int k = 0; k < 10; k++) same &= hist[k] == splits[s].digits[k];
        ok(same, "%s: per-digit counts as converted", splits[s].split);

        int lo = 255, hi = 0;
        for (int64_t i = 0; i < d.images.size; i++) {
            if (d.images.data[i] < lo) lo = d.images.data[i];
            if (d.images.data[i] > hi) hi = d.images.data[i];
        }
        ok(lo == 0 && hi == 255, "%s: pixels span 0..255 (got %d..%d)", splits[s].split, lo,
           hi);
        idx_dataset_free(&d);
        ok(d.images.data == NULL && d.count == 0, "%s: free empties the dataset",
           splits[s].split);
    }
}

/* Full size, when the Debian package dataset-fashion-mnist is installed. */
static void test_fashion_mnist(void)
{
    static const char dir[] = "/usr/share/datasets/fashion-mnist";
    if (access(dir, R_OK) != 0) {
        ok(1, "Fashion-MNIST # SKIP %s not installed", dir);
        return;
    }
    idx_dataset train, test;
    ag_error err = {{0}};
    int rc = idx_load_split(dir, "train", &train, &err);
    if (rc == AG_OK) rc = idx_load_split(dir, "t10k", &test, &err);
    if (!ok(rc == AG_OK, "Fashion-MNIST loads")) {
        diag("%s", err.msg);
        return;
    }
    ok(train.count == 60000 && test.count == 10000 && train.rows == 28 && train.cols == 28 &&
           train.classes == 10 && test.classes == 10,
       "Fashion-MNIST: 60000 + 10000 images of 28x28 in 10 classes");
    idx_dataset_free(&train);
    idx_dataset_free(&test);
}

/* ---- well-formed files ------------------------------------------------------- */

static void test_good_files(void)
{
    static uint8_t buf[256];
    uint32_t dims[3] = {3, 2, 2};
    size_t n = make_idx(buf, 0x08, 3, dims, 12);
    write_raw(in_tmp("good.idx"), buf, n);
    write_gz(in_tmp("good.idx.gz"), buf, n);
    /* gzip is detected by content: a compressed file without ".gz" still loads. */
    write_gz(in_tmp("good-gz-unnamed"), buf, n);

    const char *names[] = {"good.idx", "good.idx.gz", "good-gz-unnamed"};
    for (size_t i = 0; i < AG_COUNTOF(names); i++) {
        idx_array a;
        ag_error err = {{0}};
        int rc = idx_load(in_tmp(names[i]), &a, &err);
        if (!ok(rc == AG_OK, "%s loads", names[i])) {
            diag("%s", err.msg);
            continue;
        }
        ok(a.ndims == 3 && a.dims[0] == 3 && a.dims[1] == 2 && a.dims[2] == 2 &&
               a.item_size == 4 && a.size == 12,
           "%s: dims [3, 2, 2]", names[i]);
        ok(memcmp(a.data, buf + 16, 12) == 0, "%s: payload bytes", names[i]);
        idx_free(&a);
    }

    /* A split mixing a raw images file and gzipped labels. */
    mkdir(in_tmp("split"), 0755);
    write_raw(in_tmp("split/train-images-idx3-ubyte"), buf, n);
    write_gz(in_tmp("split/train-labels-idx1-ubyte.gz"), scratch, make_labels(scratch, 3));
    idx_dataset d;
    ag_error err = {{0}};
    int rc = idx_load_split(in_tmp("split"), "train", &d, &err);
    ok(rc == AG_OK, "split of raw images and gzipped labels loads");
    if (rc != AG_OK) diag("%s", err.msg);
    ok(d.count == 3 && d.rows == 2 && d.cols == 2 && d.classes == 3,
       "split: 3 images of 2x2, labels 0..2");
    idx_dataset_free(&d);
}

/* ---- malformed files --------------------------------------------------------- */

static void test_bad_files(void)
{
    static uint8_t buf[8192];
    char want[1024];
    uint32_t dims[3] = {3, 2, 2};
    size_t n;

    write_raw(in_tmp("empty"), buf, 0);
    snprintf(want, sizeof want, "%s: not an IDX file: only 0 bytes", in_tmp("empty"));
    expect_load_error(in_tmp("empty"), want, "empty file");

    write_raw(in_tmp("png"), (const uint8_t *)"\x89PNG\r\n\x1a\n", 8);
    snprintf(want, sizeof want,
             "%s: not an IDX file: starts with 89 50 4e 47, expected 00 00 08 and a "
             "dimension count", in_tmp("png"));
    expect_load_error(in_tmp("png"), want, "wrong magic");

    n = make_idx(buf, 0x0D, 3, dims, 48);
    write_gz(in_tmp("float.gz"), buf, n);
    snprintf(want, sizeof want,
             "%s: IDX element type 0x0d (float32) is not supported, only unsigned bytes (0x08)",
             in_tmp("float.gz"));
    expect_load_error(in_tmp("float.gz"), want, "float32 elements");

    n = make_idx(buf, 0x08, 0, dims, 0);
    write_raw(in_tmp("nodims"), buf, n);
    snprintf(want, sizeof want, "%s: IDX header has 0 dimensions, expected 1 to 4",
             in_tmp("nodims"));
    expect_load_error(in_tmp("nodims"), want, "zero dimensions");

    n = make_idx(buf, 0x08, 3, dims, 12);
    write_raw(in_tmp("cut-header"), buf, 9);
    snprintf(want, sizeof want, "%s: truncated: the IDX header needs 16 bytes, file holds 9",
             in_tmp("cut-header"));
    expect_load_error(in_tmp("cut-header"), want, "header cut short");

    uint32_t zero_rows[3] = {3, 0, 2};
    n = make_idx(buf, 0x08, 3, zero_rows, 0);
    write_raw(in_tmp("zero-rows"), buf, n);
    snprintf(want, sizeof want,
             "%s: IDX header gives dimension 2 as 0, expected 1 to 65536", in_tmp("zero-rows"));
    expect_load_error(in_tmp("zero-rows"), want, "a zero extent");

    uint32_t huge[3] = {2000000000, 65536, 65536};
    n = make_idx(buf, 0x08, 3, huge, 0);
    write_raw(in_tmp("huge"), buf, n);
    snprintf(want, sizeof want,
             "%s: IDX header promises 2000000000 images of 65536x65536, more than 17179869184 "
             "bytes", in_tmp("huge"));
    expect_load_error(in_tmp("huge"), want, "an absurd size");

    /* The example from the brief: a header for 9000 digits over 1234 bytes of pixels. */
    uint32_t mnist[3] = {9000, 28, 28};
    n = make_idx(buf, 0x08, 3, mnist, 1234);
    write_raw(in_tmp("train-images-idx3-ubyte"), buf, n);
    snprintf(want, sizeof want,
             "%s: truncated: header promises 9000 images of 28x28 (7056000 bytes), file "
             "holds 1234", in_tmp("train-images-idx3-ubyte"));
    expect_load_error(in_tmp("train-images-idx3-ubyte"), want, "truncated raw file");

    n = make_idx(buf, 0x08, 3, dims, 14);
    write_raw(in_tmp("trailing"), buf, n);
    snprintf(want, sizeof want,
             "%s: trailing data: header promises 3 images of 2x2 (12 bytes), file holds 14",
             in_tmp("trailing"));
    expect_load_error(in_tmp("trailing"), want, "trailing bytes");

    n = make_labels(buf, 5);
    write_gz(in_tmp("labels-trailing.gz"), buf, n + 1);
    snprintf(want, sizeof want,
             "%s: trailing data: header promises 5 labels (5 bytes), file holds 6",
             in_tmp("labels-trailing.gz"));
    expect_load_error(in_tmp("labels-trailing.gz"), want, "trailing bytes, gzipped labels");
}

/* Cuts the gzip file at path to keep bytes. */
static void cut_file(const char *path, size_t keep)
{
    if (truncate(path, (off_t)keep) != 0) {
        perror(path);
        exit(2);
    }
}

static void test_bad_gzip(void)
{
    static uint8_t buf[8192];
    char want[1024];
    uint32_t dims[3] = {10, 28, 28};
    size_t n = make_idx(buf, 0x08, 3, dims, 7840);

    /* Cut mid-stream: fewer pixels than promised; how many depends on deflate. */
    size_t gz = write_gz(in_tmp("half.gz"), buf, n);
    cut_file(in_tmp("half.gz"), gz / 2);
    idx_array a;
    ag_error err = {{0}};
    ok(idx_load(in_tmp("half.gz"), &a, &err) == AG_ERR, "gzip cut in half: refused");
    snprintf(want, sizeof want,
             "%s: truncated: header promises 10 images of 28x28 (7840 bytes), file holds ",
             in_tmp("half.gz"));
    ok(strncmp(err.msg, want, strlen(want)) == 0, "gzip cut in half: message");
    diag("%s", err.msg);

    /* Cut inside the 8-byte trailer: every pixel arrived, the checksum did not. */
    gz = write_gz(in_tmp("no-trailer.gz"), buf, n);
    cut_file(in_tmp("no-trailer.gz"), gz - 3);
    snprintf(want, sizeof want, "%s: truncated: the gzip stream is cut short",
             in_tmp("no-trailer.gz"));
    expect_load_error(in_tmp("no-trailer.gz"), want, "gzip without its trailer");

    /* A flipped byte inside the deflate data. */
    gz = write_gz(in_tmp("corrupt.gz"), buf, n);
    FILE *f = fopen(in_tmp("corrupt.gz"), "r+b");
    fseek(f, (long)gz - 12, SEEK_SET);
    int c = fgetc(f);
    fseek(f, (long)gz - 12, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
    err.msg[0] = 0;
    ok(idx_load(in_tmp("corrupt.gz"), &a, &err) == AG_ERR, "corrupt gzip: refused");
    snprintf(want, sizeof want, "%s: corrupt gzip data: ", in_tmp("corrupt.gz"));
    ok(strncmp(err.msg, want, strlen(want)) == 0, "corrupt gzip: message");
    diag("%s", err.msg);
}

/* ---- the cache of inflated files --------------------------------------------- */

/* How many files dir holds (-1: no dir); the last one's name in name. */
static int dir_files(const char *dir, char *name, size_t n)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int count = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            count++;
            snprintf(name, n, "%s", e->d_name);
        }
    closedir(d);
    return count;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*n ? *n : 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

/* Loads path and compares it with the IDX bytes want (header and payload). */
static int loads_as(const char *path, const uint8_t *want, size_t n, const char *what)
{
    idx_array a;
    ag_error err = {{0}};
    int rc = idx_load(path, &a, &err);
    if (rc != AG_OK) diag("%s", err.msg);
    int same = rc == AG_OK && a.size + 16 == (int64_t)n && memcmp(a.data, want + 16, n - 16) == 0;
    idx_free(&a);
    return ok(same, "%s", what);
}

/* Whether dir holds exactly one file, the entry of a source named NAME whose bytes are
 * want: a 16-byte header with the version's magic and the bytes' CRC-32, then the IDX
 * file as it inflates. Its name goes to entry. */
static int holds_entry(const char *dir, const char *name, const uint8_t *want, size_t n,
                       char *entry, size_t en, const char *what)
{
    char path[800];
    int files = dir_files(dir, entry, en);
    size_t got = 0, len = strlen(entry);
    snprintf(path, sizeof path, "%s/%s", dir, entry);
    uint8_t *b = files == 1 ? read_file(path, &got) : NULL;
    uLong crc = crc32(0, want, (uInt)n);
    int good = b && len == 34 + strlen(name) && entry[16] == '-' && entry[33] == '-' &&
               !strcmp(entry + 34, name) && got == n + 16 && !memcmp(b, "aigcca01", 8) &&
               b[8] == (crc & 255) && b[9] == (crc >> 8 & 255) && b[10] == (crc >> 16 & 255) &&
               b[11] == crc >> 24 && !memcmp(b + 16, want, n);
    free(b);
    if (!good) diag("%d files in %s, the last %s (%zu bytes)", files, dir, entry, got);
    return ok(good, "%s", what);
}

/* Flips the entry's byte at, and with fix its header's CRC to match. */
static void tamper(const char *path, long at, int fix)
{
    size_t n;
    uint8_t *b = read_file(path, &n);
    if (!b || n < 16) {
        perror(path);
        exit(2);
    }
    b[at] ^= 0x5a;
    uLong crc = crc32(0, b + 16, (uInt)(n - 16));
    for (int k = 0; k < 4 && fix; k++) b[8 + k] = (uint8_t)(crc >> 8 * k);
    write_raw(path, b, n);
    free(b);
}

/* Adds `extra` zero bytes to the entry, its header's CRC fixed to match. */
static void extend(const char *path, size_t extra)
{
    size_t n;
    uint8_t *b = read_file(path, &n);
    if (!b || n < 16) {
        perror(path);
        exit(2);
    }
    b = realloc(b, n + extra);
    memset(b + n, 0, extra);
    uLong crc = crc32(0, b + 16, (uInt)(n + extra - 16));
    for (int k = 0; k < 4; k++) b[8 + k] = (uint8_t)(crc >> 8 * k);
    write_raw(path, b, n + extra);
    free(b);
}

/* How many of this process's mappings are of a file whose path holds name (a removed
 * file's ends in " (deleted)"). */
static int mappings_of(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1200];
    int count = 0;
    while (f && fgets(line, sizeof line, f)) count += strstr(line, name) != NULL;
    if (f) fclose(f);
    return count;
}

/* A cache test's start: `count` images of 28x28 as the IDX bytes in buf (n of them), a
 * gzip source NAME.gz of them, the cache in directory `dir`, and a first load, which
 * must inflate the source and leave one entry (its name in entry, its path in path). */
typedef struct cache_case {
    size_t n;
    char src[512], cache[512], entry[256], path[800];
} cache_case;

static void cache_case_start(cache_case *c, uint8_t *buf, uint32_t count, const char *name, const char *dir,
                             const char *what)
{
    uint32_t dims[3] = {count, 28, 28};
    c->n = make_idx(buf, 0x08, 3, dims, (size_t)count * 784);
    snprintf(c->src, sizeof c->src, "%s.gz", in_tmp(name));
    snprintf(c->cache, sizeof c->cache, "%s", in_tmp(dir));
    write_gz(c->src, buf, c->n);
    setenv("AIGC_CACHE", c->cache, 1);
    char msg[200];
    snprintf(msg, sizeof msg, "%s: the first load inflates the source", what);
    loads_as(c->src, buf, c->n, msg);
    snprintf(msg, sizeof msg, "%s: and leaves one entry: header, then the inflated bytes", what);
    holds_entry(c->cache, name, buf, c->n, c->entry, sizeof c->entry, msg);
    snprintf(c->path, sizeof c->path, "%s/%s", c->cache, c->entry);
}

static void test_cache(void)
{
    /* 1,400 images of 28x28: more than DC_MIN_BYTES inflated. */
    static uint8_t big[16 + 1400 * 784];
    cache_case c;
    cache_case_start(&c, big, 1400, "big-images-idx3-ubyte", "cache", "cache");
    size_t n = c.n;
    const char *src = c.src, *cache = c.cache, *first = c.entry;
    char entry[256], path[800];
    snprintf(path, sizeof path, "%s", c.path);

    /* An entry changed with its CRC is what the next load reads: proof that it reads
     * the entry. Changed without, it is damaged, and the source is read instead. */
    tamper(path, 16 + 16 + 5, 1);
    big[16 + 5] ^= 0x5a;
    loads_as(src, big, n, "cache: the second load reads the entry");
    big[16 + 5] ^= 0x5a;
    tamper(path, 16 + 16 + 9, 0);
    loads_as(src, big, n, "cache: an entry that fails its CRC is not trusted");
    holds_entry(cache, "big-images-idx3-ubyte", big, n, entry, sizeof entry,
                "cache: and is written again whole");
    cut_file(path, 100);
    loads_as(src, big, n, "cache: a cut-short entry is not trusted");
    holds_entry(cache, "big-images-idx3-ubyte", big, n, entry, sizeof entry,
                "cache: and is written again whole");
    extend(path, 3);
    loads_as(src, big, n, "cache: an entry longer than its header promises is not trusted, CRC or not");
    holds_entry(cache, "big-images-idx3-ubyte", big, n, entry, sizeof entry,
                "cache: and is written again whole");

    /* An entry is mapped, not copied: the mapping goes with idx_free, and outlives the
     * entry's file (another run's store or prune removes it by name). */
    idx_array m;
    ag_error merr = {{0}};
    ok(idx_load(src, &m, &merr) == AG_OK && m.mapped && mappings_of(entry) == 1,
       "cache: a load from the entry maps it");
    unlink(path);
    ok(m.size + 16 == (int64_t)n && !memcmp(m.data, big + 16, n - 16),
       "cache: the mapped bytes stay whole after the entry is removed");
    int before = mappings_of(entry);
    idx_free(&m);
    ok(before == 1 && mappings_of(entry) == 0, "cache: idx_free unmaps it");
    loads_as(src, big, n, "cache: a removed entry: the source is read");

    /* A source rewritten gets a new entry, which replaces its old one and what a
     * writer killed before its rename left. */
    snprintf(path, sizeof path, "%s/%.17stmp-Xy12Zw", cache, first);
    write_raw(path, big, 10);
    struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
    utimensat(AT_FDCWD, src, times, 0);
    loads_as(src, big, n, "cache: a source with a new mtime loads");
    holds_entry(cache, "big-images-idx3-ubyte", big, n, entry, sizeof entry,
                "cache: its one entry is a new one; the old one and a stray temporary are gone");
    ok(strcmp(entry, first) != 0 && !strncmp(entry, first, 17),
       "cache: the new entry's name: the same source hash, a new identity hash");

    /* The same file through a symbolic link is the same source. */
    symlink(src, in_tmp("link.gz"));
    loads_as(in_tmp("link.gz"), big, n, "cache: a symbolic link to the source loads");
    ok(dir_files(cache, entry, sizeof entry) == 1, "cache: and shares the source's entry");

    /* Nothing is cached from a raw file or a small one. */
    write_raw(in_tmp("big-raw"), big, n);
    loads_as(in_tmp("big-raw"), big, n, "cache: a raw file loads");
    write_gz(in_tmp("small.gz"), big, 16 + 1000);
    idx_array a;
    ag_error err = {{0}};
    idx_load(in_tmp("small.gz"), &a, &err);
    idx_free(&a);
    ok(dir_files(cache, entry, sizeof entry) == 1, "cache: neither a raw nor a small file gets an entry");

    /* Off, or a directory that cannot be made: the source is read, nothing is said. */
    write_gz(in_tmp("big2.gz"), big, n);
    setenv("AIGC_CACHE", "off", 1);
    loads_as(in_tmp("big2.gz"), big, n, "cache: AIGC_CACHE=off: loads");
    ok(dir_files(cache, entry, sizeof entry) == 1, "cache: AIGC_CACHE=off: writes no entry");
    write_raw(in_tmp("plain"), big, 1);
    setenv("AIGC_CACHE", in_tmp("plain/cache"), 1);
    loads_as(in_tmp("big2.gz"), big, n, "cache: a directory that cannot be made: loads");

    /* Where it is by default: XDG_CACHE_HOME when absolute, else HOME's .cache. */
    unsetenv("AIGC_CACHE");
    setenv("XDG_CACHE_HOME", in_tmp("xdg"), 1);
    loads_as(src, big, n, "cache: with XDG_CACHE_HOME: loads");
    ok(dir_files(in_tmp("xdg/aigc-run"), entry, sizeof entry) == 1, "cache: in $XDG_CACHE_HOME/aigc-run");
    setenv("XDG_CACHE_HOME", "relative", 1);
    setenv("HOME", in_tmp("home"), 1);
    loads_as(src, big, n, "cache: with a relative XDG_CACHE_HOME: loads");
    ok(dir_files(in_tmp("home/.cache/aigc-run"), entry, sizeof entry) == 1,
       "cache: a relative XDG_CACHE_HOME is ignored for $HOME/.cache/aigc-run");
    setenv("AIGC_CACHE", "off", 1);
}

/* An entry of 8 MiB or more has its CRC taken in two halves, on two threads: a byte
 * changed in either half is caught, and an entry changed with its CRC is still read. */
static void test_cache_halves(void)
{
    static uint8_t huge[16 + 11000 * 784];
    cache_case c;
    cache_case_start(&c, huge, 11000, "huge-images-idx3-ubyte", "cache-halves", "cache halves (8.6 MB)");
    size_t n = c.n;
    const char *src = c.src, *path = c.path;
    long at[] = {16 + 100, 16 + (long)n - 100};
    for (int h = 0; h < 2; h++) {
        tamper(path, at[h], 1);
        huge[at[h] - 16] ^= 0x5a;
        loads_as(src, huge, n, h ? "cache halves: a change in the second half with its CRC is read"
                                 : "cache halves: a change in the first half with its CRC is read");
        huge[at[h] - 16] ^= 0x5a;
        tamper(path, at[h] + 1, 0);
        loads_as(src, huge, n, h ? "cache halves: a byte changed in the second half is caught"
                                 : "cache halves: a byte changed in the first half is caught");
    }
    setenv("AIGC_CACHE", "off", 1);
}

/* ---- splits ------------------------------------------------------------------ */

static void expect_split_error(const char *dir, const char *want, const char *what)
{
    idx_dataset d;
    ag_error err = {{0}};
    int rc = idx_load_split(dir, "train", &d, &err);
    ok(rc == AG_ERR && d.images.data == NULL && d.labels.data == NULL, "%s: refused", what);
    is_str(err.msg, want, "%s: message", what);
}

static void test_bad_splits(void)
{
    static uint8_t buf[256];
    char want[1024];
    uint32_t dims[3] = {3, 2, 2};
    size_t n = make_idx(buf, 0x08, 3, dims, 12);

    snprintf(want, sizeof want, "%s: No such file or directory", in_tmp("nowhere"));
    expect_split_error(in_tmp("nowhere"), want, "missing directory");

    snprintf(want, sizeof want, "%s: not a directory", in_tmp("good.idx"));
    expect_split_error(in_tmp("good.idx"), want, "a file for a directory");

    mkdir(in_tmp("no-labels"), 0755);
    write_gz(in_tmp("no-labels/train-images-idx3-ubyte.gz"), buf, n);
    snprintf(want, sizeof want,
             "%s: no train labels: looked for train-labels-idx1-ubyte and "
             "train-labels-idx1-ubyte.gz", in_tmp("no-labels"));
    expect_split_error(in_tmp("no-labels"), want, "missing labels");

    mkdir(in_tmp("mismatch"), 0755);
    write_gz(in_tmp("mismatch/train-images-idx3-ubyte.gz"), buf, n);
    write_raw(in_tmp("mismatch/train-labels-idx1-ubyte"), scratch, make_labels(scratch, 2));
    snprintf(want, sizeof want, "%s holds 3 images but %s holds 2 labels",
             in_tmp("mismatch/train-images-idx3-ubyte.gz"),
             in_tmp("mismatch/train-labels-idx1-ubyte"));
    expect_split_error(in_tmp("mismatch"), want, "count mismatch");

    mkdir(in_tmp("swapped"), 0755);
    write_raw(in_tmp("swapped/train-images-idx3-ubyte"), scratch, make_labels(scratch, 3));
    write_raw(in_tmp("swapped/train-labels-idx1-ubyte"), buf, n);
    snprintf(want, sizeof want,
             "%s: expected images (IDX magic 00 00 08 03), found a 1-dimensional IDX file",
             in_tmp("swapped/train-images-idx3-ubyte"));
    expect_split_error(in_tmp("swapped"), want, "labels where images belong");

    mkdir(in_tmp("empty-split"), 0755);
    uint32_t none[3] = {0, 28, 28};
    write_raw(in_tmp("empty-split/train-images-idx3-ubyte"), buf,
              make_idx(buf, 0x08, 3, none, 0));
    write_raw(in_tmp("empty-split/train-labels-idx1-ubyte"), scratch, make_labels(scratch, 0));
    snprintf(want, sizeof want, "%s: holds no images",
             in_tmp("empty-split/train-images-idx3-ubyte"));
    expect_split_error(in_tmp("empty-split"), want, "no images");
}

/* ---- writing ------------------------------------------------------------------ */

/* What idx_writer writes, idx_load_split reads back: the header its dims give, the
 * items in the order they came, in pieces; and nothing is at the path until the end. */
static void test_write(void)
{
    enum { COUNT = 7, ROWS = 3, COLS = 5 };
    uint8_t images[COUNT * ROWS * COLS], labels[COUNT];
    for (int i = 0; i < COUNT * ROWS * COLS; i++) images[i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < COUNT; i++) labels[i] = (uint8_t)(i % 4);
    mkdir(in_tmp("written"), 0755);
    idx_writer wi, wl;
    ag_error err = {{0}};
    int64_t idims[] = {COUNT, ROWS, COLS}, ldims[] = {COUNT};
    int rc = idx_write_begin(&wi, in_tmp("written/train-images-idx3-ubyte"), IDX_UBYTE, 3, idims, &err);
    if (rc == AG_OK) rc = idx_write_begin(&wl, in_tmp("written/train-labels-idx1-ubyte"), IDX_UBYTE, 1, ldims, &err);
    /* In pieces of 3, 0 and 4 items. */
    if (rc == AG_OK) rc = idx_write_items(&wi, images, 3, &err);
    if (rc == AG_OK) rc = idx_write_items(&wi, images + 3 * ROWS * COLS, 0, &err);
    if (rc == AG_OK) rc = idx_write_items(&wi, images + 3 * ROWS * COLS, 4, &err);
    if (rc == AG_OK) rc = idx_write_items(&wl, labels, COUNT, &err);
    ok(rc == AG_OK && access(in_tmp("written/train-images-idx3-ubyte"), F_OK) != 0,
       "write: the items go to a temporary file, not yet to the path");
    if (rc == AG_OK) rc = idx_write_end(&wi, &err);
    if (rc == AG_OK) rc = idx_write_end(&wl, &err);
    if (!ok(rc == AG_OK, "write: images and labels written")) diag("%s", err.msg);

    size_t n;
    uint8_t *raw = read_file(in_tmp("written/train-images-idx3-ubyte"), &n);
    static const uint8_t head[] = {0, 0, 8, 3, 0, 0, 0, COUNT, 0, 0, 0, ROWS, 0, 0, 0, COLS};
    ok(raw && n == sizeof head + sizeof images && memcmp(raw, head, sizeof head) == 0,
       "write: the images' header is 00 00 08 03, then %d, %d, %d big-endian", COUNT, ROWS, COLS);
    free(raw);

    idx_dataset d;
    rc = idx_load_split(in_tmp("written"), "train", &d, &err);
    if (!ok(rc == AG_OK, "write: the directory reads as a training split")) diag("%s", err.msg);
    ok(rc == AG_OK && d.count == COUNT && d.rows == ROWS && d.cols == COLS && d.classes == 4 &&
           memcmp(d.images.data, images, sizeof images) == 0 && memcmp(d.labels.data, labels, sizeof labels) == 0,
       "write: read back, the same %d images of %dx%d and labels 0..3", COUNT, ROWS, COLS);
    idx_dataset_free(&d);

    /* An abandoned writer leaves neither the file nor its temporary one. */
    rc = idx_write_begin(&wl, in_tmp("written/t10k-labels-idx1-ubyte"), IDX_UBYTE, 1, ldims, &err);
    idx_write_abort(&wl);
    ok(rc == AG_OK && access(in_tmp("written/t10k-labels-idx1-ubyte"), F_OK) != 0 &&
           access(in_tmp("written/t10k-labels-idx1-ubyte.tmp"), F_OK) != 0,
       "write: an aborted file leaves nothing behind");
}

/* ---- float features ----------------------------------------------------------- */

/* idx_write's floats come back bit for bit through idx_load_features, raw and gzip,
 * and through the cache of inflated files, whose entry keeps the float type. */
static void test_features(void)
{
    enum { N = 3, F = 4 };
    const float x[N * F] = {1.0f, -2.5f, 0.0f, 3.25e-7f, -0.0f, 1e30f, -1e-30f, 65504.0f,
                            0.1f, -0.2f, 0.3f, 7.0f};
    const uint8_t labels[N] = {2, 0, 7};
    int64_t dims[2] = {N, F};
    ag_error err = {{0}};
    mkdir(in_tmp("feat"), 0755);
    ok(idx_write(in_tmp("feat/train-features-idx2-float"), IDX_FLOAT, 2, dims, x, &err) == AG_OK &&
           idx_write(in_tmp("feat/train-labels-idx1-ubyte"), IDX_UBYTE, 1, dims, labels, &err) == AG_OK,
       "features: idx_write writes floats and labels");
    uint8_t buf[64];
    FILE *f = fopen(in_tmp("feat/train-features-idx2-float"), "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    static const uint8_t head[] = {0, 0, 0x0d, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0};
    ok(n == 12 + 4 * N * F && !memcmp(buf, head, sizeof head),
       "features: header 00 00 0d 02, dims [3, 4], then big-endian floats (1.0 is 3f 80 00 00)");

    idx_dataset d;
    int rc = idx_load_features(in_tmp("feat"), "train", &d, &err);
    int same = rc == AG_OK && d.count == N && d.rows == 1 && d.cols == F && d.classes == 8;
    for (int i = 0; same && i < N * F; i++) {
        float v = idx_float(&d.images, i);
        same = !memcmp(&v, &x[i], sizeof v);
    }
    ok(same, "features: read back bit for bit, [3, 1, 4], 8 classes");
    if (rc) diag("%s", err.msg);
    idx_dataset_free(&d);

    /* A gzip file too, and one over DC_MIN_BYTES cached: its entry's header keeps 0x0d. */
    enum { BIG = 70000 };
    float *big = malloc(sizeof(float) * BIG * F);
    uint8_t *bl = malloc(BIG);
    for (int i = 0; i < BIG * F; i++) big[i] = (float)i * 0.5f - 3.0f;
    for (int i = 0; i < BIG; i++) bl[i] = (uint8_t)(i % 10);
    int64_t bdims[2] = {BIG, F};
    mkdir(in_tmp("featgz"), 0755);
    mkdir(in_tmp("featcache"), 0755);
    idx_write(in_tmp("featgz/raw"), IDX_FLOAT, 2, bdims, big, &err);
    FILE *r = fopen(in_tmp("featgz/raw"), "rb");
    uint8_t *bytes = malloc(12 + sizeof(float) * BIG * F);
    size_t nb = r ? fread(bytes, 1, 12 + sizeof(float) * BIG * F, r) : 0;
    if (r) fclose(r);
    unlink(in_tmp("featgz/raw"));
    write_gz(in_tmp("featgz/t10k-features-idx2-float.gz"), bytes, nb);
    idx_write(in_tmp("featgz/t10k-labels-idx1-ubyte"), IDX_UBYTE, 1, bdims, bl, &err);
    setenv("AIGC_CACHE", in_tmp("featcache"), 1);
    for (int pass = 0; pass < 2; pass++) {
        rc = idx_load_features(in_tmp("featgz"), "t10k", &d, &err);
        same = rc == AG_OK && d.count == BIG && d.cols == F && (pass == 0 || d.images.mapped);
        for (int i = 0; same && i < BIG * F; i++) same = idx_float(&d.images, i) == big[i];
        ok(same, "features: gzip, %s", pass ? "then from the cache's mapped entry" : "inflated");
        idx_dataset_free(&d);
    }
    setenv("AIGC_CACHE", "off", 1);
    free(bytes);
    free(big);
    free(bl);

    /* Each kind refuses the other's element type, naming the one it reads. */
    char want[1200];
    snprintf(want, sizeof want, "%s: IDX element type 0x08 (unsigned byte) is not supported, only float32 (0x0d)",
             in_tmp("feat/train-labels-idx1-ubyte"));
    idx_array a;
    rc = idx_load_typed(in_tmp("feat/train-labels-idx1-ubyte"), IDX_FLOAT, &a, &err);
    ok(rc == AG_ERR && !strcmp(err.msg, want), "features: a byte file where floats are read: refused");
    if (strcmp(err.msg, want)) diag("got: %s", err.msg);
    snprintf(want, sizeof want, "%s: IDX element type 0x0d (float32) is not supported, only unsigned bytes (0x08)",
             in_tmp("feat/train-features-idx2-float"));
    expect_load_error(in_tmp("feat/train-features-idx2-float"), want, "features: floats where bytes are read");
}

int main(void)
{
    tmp_open("idx");
    /* Off but where test_cache turns it on: no load reads what an earlier one left. */
    setenv("AIGC_CACHE", "off", 1);
    test_committed_subset();
    test_fashion_mnist();
    test_good_files();
    test_bad_files();
    test_bad_gzip();
    test_cache();
    test_cache_halves();
    test_bad_splits();
    test_write();
    test_features();
    tmp_close();
    return tap_done();
}
