/*
 * encode.h — a features section over whole splits, written as a data set (prefix en_).
 *
 * `aigc-run encode SPEC --section NAME -o DIR` runs a sample section that gives
 * `features:` over every image of the training and the test split, a chunk of the
 * section's count at a time, and writes what a `dataset: features` spec reads:
 *
 *     DIR/train-features-idx2-float   [N, F] float32 IDX (type 0x0D)
 *     DIR/train-labels-idx1-ubyte     [N] the split's labels
 *     DIR/t10k-features-idx2-float    the same for the test split
 *     DIR/t10k-labels-idx1-ubyte
 *     DIR/scatter.png                 the test split's first two principal components
 *
 *     en_result r;
 *     if (en_write(p, k, &data, "runs/vae/latent", seed, &r, &err)) ...
 *     for (int j = 0; j < r.nfiles; j++) puts(r.files[j]);
 *
 * Each file is replaced whole or not at all (afile.h).
 */
#ifndef AIGC_ENCODE_H
#define AIGC_ENCODE_H

#include <stdint.h>

#include "aigc/dataset.h"
#include "aigc/program.h"

/* The most features per image the scatter's principal components take: a covariance
 * of 4096^2 doubles is 128 MiB. */
#define EN_MAX_FEATURES 4096

typedef struct en_result {
    int nfiles;
    char files[5][4200];   /* the paths written, in order */
    int features;          /* F */
    int64_t train, test;   /* rows written per split (test 0: the data has none) */
    double share[2];       /* the variance the scatter's two axes hold, as parts of 1 */
} en_result;

/* Section k (a features section) of p, with weights loaded, over d's splits into dir
 * (made when missing); its noise drawn from seed, the next seed per chunk. */
int en_write(pg_program *p, int k, const ds_data *d, const char *dir, uint64_t seed, en_result *r, ag_error *err);

#endif
