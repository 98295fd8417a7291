/*
 * sample.h — drawing a spec's sample sections and writing what they make (prefix sa_):
 * a PNG grid (and a trajectory strip beside it), a section's texts, or its images and
 * labels as an IDX data set.
 *
 *     if (sa_write(p, k, &data, "samples.png", spec->seed, 0, &err)) ...
 *
 * The program runs the section (pg_sample); this module gives it its inputs (image
 * files, text prompts, the test split's images for test_x) and lays out the result.
 */
#ifndef AIGC_SAMPLE_H
#define AIGC_SAMPLE_H

#include <stdint.h>

#include "aigc/dataset.h"
#include "aigc/program.h"

/* Writes sample section k's image inputs (its `inputs:` of kind image) from their PNG
 * files, and its text inputs as token ids in d's vocabulary; an input with no file, an
 * unreadable file or one of the wrong size, or text with a byte the vocabulary lacks,
 * is an error. Only the first call writes them. sa_draw calls it; training calls it
 * before the first epoch, so that a section drawn each epoch fails at the start and
 * not after the first epoch. */
int sa_inputs(pg_program *p, int k, const ds_data *d, ag_error *err);

/* Runs sample section k with its noise drawn from seed, test_x from d's test split
 * starting at image first (wrapping around); the images are then
 * p->samples[k].image->data. */
int sa_draw(pg_program *p, int k, const ds_data *d, int64_t first, uint64_t seed, ag_error *err);

/* The images [0, n) of section k's last draw as bytes [n, rows, cols] into pixels
 * (unless NULL), mapped from the section's range to 0..255 as its grid maps them (no
 * range known: the draw's own min..max, as the grid of that draw would); and into
 * labels (unless NULL) their `label:` values, which must be whole numbers of the data's
 * classes (first, the number of the draw's first image among all drawn, numbers them in
 * the message). The section gives one-channel images; labels only with a `label:`. */
int sa_bytes(const pg_program *p, int k, int64_t n, int64_t first, uint8_t *pixels, uint8_t *labels, ag_error *err);

/* Section k's grid into path, its noise drawn from seed, test_x from d: its first
 * `limit` images (all when 0), laid out as square as fits when that is not the
 * section's own count; a limit above the count is drawn in rounds of it, each with the
 * next seed and the next test images. A text section writes its texts instead (token
 * ids decoded with d's vocabulary), path "-" for stdout, each after a
 * "--- sample K of N" line when there are several. */
int sa_write(pg_program *p, int k, const ds_data *d, const char *path, uint64_t seed, int limit, ag_error *err);

/* n images of section k as a data set's training split in dir (made when missing):
 * dir/train-images-idx3-ubyte, and with a `label:`, dir/train-labels-idx1-ubyte, the
 * names a spec's data.path reads. Drawn in rounds of the section's count, each with the
 * next seed and the next test images, as eval --quality draws them. The section gives
 * one-channel images. */
int sa_write_idx(pg_program *p, int k, const ds_data *d, const char *dir, uint64_t seed, int64_t n, ag_error *err);
/* The files sa_write_idx writes: dir/train-images-idx3-ubyte (labels 0) or
 * dir/train-labels-idx1-ubyte (1). AG_ERR when it does not fit in n bytes. */
int sa_idx_path(const char *dir, int labels, char *buf, size_t n);

/* Where a section's strip goes beside its grid: "a/b.png" -> "a/b-strip.png". AG_ERR
 * when it does not fit in n bytes. */
int sa_strip_path(const char *grid, char *buf, size_t n);

#endif
