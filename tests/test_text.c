/*
 * test_text.c — the text corpus: which files of a directory are read, the vocabulary,
 * the deterministic split, the windows, the unigram baseline, and the messages.
 * Fixtures are written in a temp dir.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aigc/text.h"
#include "tap.h"
#include "tmpdir.h"

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(in_tmp(name), "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) {
        perror(name);
        exit(2);
    }
}

/* The corpus back as bytes: train then test, decoded through the vocabulary. */
static void decode(const tx_corpus *c, const uint8_t *ids, int64_t n, char *out)
{
    for (int64_t k = 0; k < n; k++) out[k] = (char)c->bytes[ids[k]];
    out[n] = 0;
}

static void test_directory(void)
{
    mkdir(in_tmp("dir"), 0777);
    write_text("dir/b", "bbbb\n");
    write_text("dir/a", "aaaa\n");
    write_text("dir/c-copy", "bbbb\n");        /* the same bytes as b: read once */
    write_text("dir/a.dat", "index");          /* fortune's index of a */
    write_text("dir/.hidden", "hidden");
    symlink("a", in_tmp("dir/a.u8"));          /* fortune's UTF-8 alias of a */
    mkdir(in_tmp("dir/sub"), 0777);
    write_text("dir/sub/z", "zzzz");           /* subdirectories are not read */
    tx_corpus c;
    ag_error err;
    if (!ok(tx_load(in_tmp("dir"), 0, &c, &err) == AG_OK, "a directory loads")) {
        diag("%s", err.msg);
        return;
    }
    char text[64];
    decode(&c, c.train, c.ntrain, text);
    is_str(text, "aaaa\nbbbb\n", "its regular files in name order, without copies, indexes, links or hidden files");
    ok(c.nfiles == 2 && c.size == 10 && c.ntest == 0, "2 files, 10 bytes, no test split at fraction 0");
    ok(c.vocab == 3 && c.bytes[0] == '\n' && c.bytes[1] == 'a' && c.bytes[2] == 'b',
       "the vocabulary is the distinct bytes, sorted");
    ok(c.id['a'] == 1 && c.id['z'] == -1, "bytes map to ids; absent bytes to -1");
    tx_free(&c);
}

static void test_split_and_windows(void)
{
    /* 1000 bytes: 100 blocks of 10, blocks 9, 19, ..., 99 to the test split. */
    char big[1001];
    for (int k = 0; k < 1000; k++) big[k] = (char)('a' + k / 10 % 26);
    big[1000] = 0;
    write_text("big", big);
    tx_corpus c;
    ag_error err;
    if (!ok(tx_load(in_tmp("big"), 0.1, &c, &err) == AG_OK, "a file loads")) {
        diag("%s", err.msg);
        return;
    }
    ok(c.ntrain == 900 && c.ntest == 100, "a test fraction of 0.1 holds out 100 of 1000 bytes");
    char text[1001];
    decode(&c, c.test, 20, text);
    is_str(text, "jjjjjjjjjjtttttttttt", "the test split is every tenth block, spread through the corpus");
    tx_corpus again;
    tx_load(in_tmp("big"), 0.1, &again, &err);
    ok(again.ntest == c.ntest && !memcmp(again.test, c.test, (size_t)c.ntest), "the split is the same every time");
    tx_free(&again);

    idx_dataset w;
    tx_windows(c.train, c.ntrain, 9, &w);
    ok(w.count == (900 - 1) / 8 && w.rows == 1 && w.cols == 9, "windows of 9 tokens start every 8: 112 of them");
    ok(!memcmp(w.images.data + 9, c.train + 8, 9) && w.images.data[8] == w.images.data[9],
       "each window starts on the last token of the one before");
    idx_dataset_free(&w);

    /* Test tokens of ten letters 'j' and 't' (never in training) ... */
    double bits = tx_unigram_bits(&c, 0, 10);
    int64_t count_j = 0;
    for (int64_t k = 0; k < c.ntrain; k++) count_j += c.bytes[c.train[k]] == 'j';
    is_close(bits, -log2((count_j + 1.0) / (double)(c.ntrain + c.vocab)), 1e-9, 0,
             "the unigram baseline is the add-one smoothed training frequency, in bits");
    tx_free(&c);
}

static void test_messages(void)
{
    tx_corpus c;
    ag_error err;
    ok(tx_load(in_tmp("nothing"), 0.1, &c, &err) == AG_ERR, "a missing path fails");
    char want[600];
    snprintf(want, sizeof want, "%s: No such file or directory", in_tmp("nothing"));
    is_str(err.msg, want, "the message names the path");
    write_text("empty", "");
    tx_load(in_tmp("empty"), 0.1, &c, &err);
    snprintf(want, sizeof want, "%s: no text: the file is empty", in_tmp("empty"));
    is_str(err.msg, want, "an empty file");
    mkdir(in_tmp("emptydir"), 0777);
    write_text("emptydir/x.dat", "index only");
    tx_load(in_tmp("emptydir"), 0.1, &c, &err);
    snprintf(want, sizeof want, "%s: no text: the directory holds no non-empty regular files (hidden files, "
             "symlinks and *.dat are skipped)", in_tmp("emptydir"));
    is_str(err.msg, want, "a directory of nothing to read");
    ok(c.train == NULL && c.vocab == 0, "a failed load leaves the corpus empty");
    ok(mkfifo(in_tmp("fifo"), 0600) == 0, "a FIFO is made");
    ok(tx_load(in_tmp("fifo"), 0.1, &c, &err) == AG_ERR, "a FIFO as the corpus is refused, without blocking");
    snprintf(want, sizeof want, "%s: not a file or a directory", in_tmp("fifo"));
    is_str(err.msg, want, "  with the message");
}

int main(void)
{
    tmp_open("text");
    test_directory();
    test_split_and_windows();
    test_messages();
    tmp_close();
    return tap_done();
}
