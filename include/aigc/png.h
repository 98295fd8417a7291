/*
 * png.h — sample grids out, grayscale masks in (prefix img_).
 *
 * A training run writes its samples as one PNG grid per epoch:
 *
 *     // 64 generated images in [-1, 1], 1x28x28 each, as an 8x8 grid
 *     if (img_write_grid("runs/gan/samples-003.png", x, 64, 28, 28, 1, 8, 8,
 *                        -1.0f, 1.0f, 2, &err) != AG_OK)
 *         fprintf(stderr, "%s\n", err.msg);
 *
 * The file is written as "PATH.tmp" and renamed over PATH only once complete, so a
 * crash or a full disk never leaves a half-written image where a finished one was.
 * Errors name the path and the system's reason.
 */
#ifndef AIGC_PNG_H
#define AIGC_PNG_H

#include <stdint.h>

#include "aigc/base.h"

/* n values mapped to pixels as img_write_grid maps them: linearly from [lo, hi] to
 * [0, 255], rounded, clamped, NaN 0 (lo < hi). */
void img_to_bytes(const float *x, int64_t n, float lo, float hi, uint8_t *out);

/* Writes n images laid out [n, channels, h, w] (PyTorch's NCHW; channels 1 = gray,
 * 3 = RGB) into a rows x cols grid, filled row by row, with pad black pixels between
 * and around the tiles (like torchvision's make_grid); unused tiles stay black.
 * Values map linearly from [lo, hi] to [0, 255], rounded, clamped; NaN becomes 0.
 * n <= rows * cols and lo < hi are the caller's to ensure. */
int img_write_grid(const char *path, const float *images, int n, int h, int w, int channels,
                   int rows, int cols, float lo, float hi, int pad, ag_error *err);

/* Writes an 8-bit RGB image, h rows of 3 * w bytes (a drawing: scatter.h). */
int img_write_rgb(const char *path, const uint8_t *rgb, int w, int h, ag_error *err);

/* An 8-bit grayscale image, h rows of w bytes, in one allocation. */
typedef struct img_gray {
    int h, w;
    uint8_t *pixels;
} img_gray;

/* Reads any PNG as 8-bit gray: color is converted by libpng, 16-bit reduced, and an
 * alpha channel composited onto black (transparent reads as 0). On error *out is left
 * empty (safe to img_gray_free). */
int img_read_gray(const char *path, img_gray *out, ag_error *err);
void img_gray_free(img_gray *img);

#endif
