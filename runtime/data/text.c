/* text.c — a text corpus read into byte tokens (see text.h). */
#include "aigc/text.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const ag_loc tx_noloc = {0};

/* A corpus past this is not what a character model on one machine trains on; a
 * limit keeps every size an int64_t far from overflow. */
#define TX_MAX_BYTES ((int64_t)1 << 30)

typedef struct tx_buf {
    uint8_t *data;
    int64_t len, cap;
} tx_buf;

/* ---- reading ------------------------------------------------------------------- */

/* Appends the whole file to b. */
static int tx_read_file_impl(const char *path, tx_buf *b, ag_error *err)
{
    char why[128];
    FILE *f = ag_fopen_regular(path, why, sizeof why);
    if (!f) return ag_errorf(err, tx_noloc, "%s: %s", path, why);
    for (;;) {
        if (b->cap - b->len < 65536) {
            b->cap = b->cap ? 2 * b->cap : 1 << 20;
            b->data = ag_xrealloc(b->data, (size_t)b->cap);
        }
        size_t got = fread(b->data + b->len, 1, (size_t)(b->cap - b->len), f);
        b->len += (int64_t)got;
        if (b->len > TX_MAX_BYTES) {
            fclose(f);
            return ag_errorf(err, tx_noloc, "%s: the corpus passes %lld bytes, more than a character model "
                             "here reads", path, (long long)TX_MAX_BYTES);
        }
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return ag_errorf(err, tx_noloc, "%s: read error", path);
    return AG_OK;
}

static int tx_by_name_impl(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name); /* bytes, not the locale's collation */
}

static int tx_wanted_impl(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && !(n > 4 && !strcmp(e->d_name + n - 4, ".dat"));
}

/* The regular files of dir, in name order, each once. */
static int tx_read_dir_impl(const char *dir, tx_buf *b, int *nfiles, ag_error *err)
{
    struct dirent **list;
    int n = scandir(dir, &list, tx_wanted_impl, tx_by_name_impl);
    if (n < 0) return ag_errorf(err, tx_noloc, "%s: %s", dir, strerror(errno));
    int64_t *starts = ag_xcalloc((size_t)n + 1, sizeof *starts);
    int rc = AG_OK;
    for (int k = 0; k < n; k++) {
        char path[4352];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, list[k]->d_name);
        if (rc != AG_OK || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        int64_t at = b->len;
        rc = tx_read_file_impl(path, b, err);
        for (int j = 0; j < *nfiles && rc == AG_OK; j++) {
            int64_t len = starts[j + 1] - starts[j];
            if (len == b->len - at && !memcmp(b->data + starts[j], b->data + at, (size_t)len)) {
                b->len = at; /* the same text twice would weigh it twice */
                break;
            }
        }
        if (rc == AG_OK && b->len > at) starts[++*nfiles] = b->len;
    }
    for (int k = 0; k < n; k++) free(list[k]);
    free(list);
    free(starts);
    return rc;
}

/* ---- the corpus ----------------------------------------------------------------- */

static int tx_load_impl(const char *path, double f, tx_corpus *c, tx_buf *b, ag_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) return ag_errorf(err, tx_noloc, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (tx_read_dir_impl(path, b, &c->nfiles, err)) return AG_ERR;
        if (c->nfiles == 0)
            return ag_errorf(err, tx_noloc, "%s: no text: the directory holds no non-empty regular files "
                             "(hidden files, symlinks and *.dat are skipped)", path);
    } else if (S_ISREG(st.st_mode)) {
        if (tx_read_file_impl(path, b, err)) return AG_ERR;
        if (b->len == 0) return ag_errorf(err, tx_noloc, "%s: no text: the file is empty", path);
        c->nfiles = 1;
    } else {
        return ag_errorf(err, tx_noloc, "%s: not a file or a directory", path);
    }
    c->size = b->len;

    int seen[256] = {0};
    for (int64_t k = 0; k < b->len; k++) seen[b->data[k]] = 1;
    for (int v = 0; v < 256; v++) {
        c->id[v] = seen[v] ? (int16_t)c->vocab : -1;
        if (seen[v]) c->bytes[c->vocab++] = (uint8_t)v;
    }

    c->train = ag_xmalloc((size_t)b->len);
    c->test = ag_xmalloc((size_t)b->len);
    /* Fewer blocks than bytes would leave blocks empty and the split unlike f. */
    int blocks = b->len < TX_BLOCKS ? (int)b->len : TX_BLOCKS;
    for (int i = 0; i < blocks; i++) {
        int64_t lo = b->len * i / blocks, hi = b->len * (i + 1) / blocks;
        int test = (int64_t)((i + 1) * f) > (int64_t)(i * f);
        uint8_t *dst = test ? c->test + c->ntest : c->train + c->ntrain;
        for (int64_t k = lo; k < hi; k++) dst[k - lo] = (uint8_t)c->id[b->data[k]];
        *(test ? &c->ntest : &c->ntrain) += hi - lo;
    }
    return AG_OK;
}

int tx_load(const char *path, double test_fraction, tx_corpus *c, ag_error *err)
{
    AG_ASSERT(test_fraction >= 0 && test_fraction <= 0.5);
    memset(c, 0, sizeof *c);
    tx_buf b = {0};
    int rc = tx_load_impl(path, test_fraction, c, &b, err);
    free(b.data);
    if (rc != AG_OK) tx_free(c);
    return rc;
}

void tx_free(tx_corpus *c)
{
    free(c->train);
    free(c->test);
    memset(c, 0, sizeof *c);
}

double tx_unigram_bits(const tx_corpus *c, int64_t first, int64_t n)
{
    AG_ASSERT(first >= 0 && n > 0 && first + n <= c->ntest);
    int64_t count[256] = {0};
    for (int64_t k = 0; k < c->ntrain; k++) count[c->train[k]]++;
    double bits = 0, total = (double)(c->ntrain + c->vocab);
    for (int64_t k = first; k < first + n; k++) bits -= log2((double)(count[c->test[k]] + 1) / total);
    return bits / (double)n;
}

void tx_windows(const uint8_t *ids, int64_t n, int len, idx_dataset *out)
{
    AG_ASSERT(len >= 2 && n >= len);
    memset(out, 0, sizeof *out);
    int64_t count = (n - 1) / (len - 1);
    AG_ASSERT(count <= INT32_MAX); /* the corpus limit keeps it so */
    uint8_t *windows = ag_xmalloc((size_t)(count * len));
    for (int64_t k = 0; k < count; k++) memcpy(windows + k * len, ids + k * (len - 1), (size_t)len);
    out->images = (idx_array){.ndims = 3, .dims = {count, 1, len}, .item_size = len,
                              .size = count * len, .data = windows};
    out->labels = (idx_array){.ndims = 1, .dims = {count}, .item_size = 1, .size = count,
                              .data = ag_xcalloc((size_t)count, 1)};
    out->count = count;
    out->rows = 1;
    out->cols = len;
    out->classes = 1;
}
