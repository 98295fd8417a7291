/*
 * text.h — a text corpus as byte tokens, for character-level models (prefix tx_).
 *
 *     tx_corpus c;
 *     if (tx_load("/usr/share/games/fortunes", 0.1, &c, &err) != AG_OK) { print err.msg }
 *     // c.train [c.ntrain] and c.test [c.ntest] hold token ids in [0, c.vocab);
 *     // c.bytes[id] is the byte a token stands for
 *     idx_dataset w;
 *     tx_windows(c.train, c.ntrain, 65, &w);   // [count, 1, 65] windows, ids as bytes
 *     tx_free(&c);
 *
 * The corpus is a file, or the regular files of a directory (not its subdirectories),
 * read in name order. Skipped: hidden files, symlinks (fortune's NAME.u8 point at
 * NAME), fortune's index files (*.dat), and a file whose bytes repeat an earlier one's.
 *
 * The vocabulary is the distinct bytes of the whole corpus, sorted: a byte that only
 * the test split holds still needs an id for its likelihood to be measured.
 *
 * The split is deterministic: the corpus is cut into TX_BLOCKS blocks of equal length
 * (as many as it has bytes, when fewer),
 * and block i goes to the test split when floor((i + 1) f) > floor(i f), so a fraction f
 * of the blocks, spread evenly through the corpus, not its last files alone.
 */
#ifndef AIGC_TEXT_H
#define AIGC_TEXT_H

#include <stdint.h>

#include "aigc/base.h"
#include "aigc/idx.h"

enum { TX_BLOCKS = 100 };

typedef struct tx_corpus {
    uint8_t *train, *test;  /* token ids */
    int64_t ntrain, ntest;
    int vocab;
    uint8_t bytes[256];     /* token id -> byte */
    int16_t id[256];        /* byte -> token id, -1 when the corpus never has it */
    int nfiles;             /* files read (duplicates and skipped ones not counted) */
    int64_t size;           /* bytes read */
} tx_corpus;

/* test_fraction in [0, 0.5]. On error *c is left empty (safe to tx_free). */
int tx_load(const char *path, double test_fraction, tx_corpus *c, ag_error *err);
void tx_free(tx_corpus *c);

/* The unigram baseline: the cross-entropy in bits per token of test[first, first + n)
 * under the training split's byte frequencies, add-one smoothed so that a byte the
 * training split lacks costs much but not infinitely. */
double tx_unigram_bits(const tx_corpus *c, int64_t first, int64_t n);

/* The windows of len tokens that start every len - 1 tokens, so that their targets
 * (tokens 1 .. len - 1 of each) cover the text once: images [count, 1, len] and labels
 * [count] (zeros) in *out, count = (n - 1) / (len - 1). Needs n >= len. */
void tx_windows(const uint8_t *ids, int64_t n, int len, idx_dataset *out);

#endif
