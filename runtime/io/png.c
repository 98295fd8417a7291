/*
 * png.c — PNG grids and masks through libpng's simplified API (see png.h).
 *
 * The simplified API (png_image_*) reports errors in image.message instead of
 * longjmp-ing through our frames, so no setjmp and no volatile locals here.
 */
#include "aigc/png.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigc/afile.h"

static const ag_loc img_noloc = {0};

/* A mask larger than this is a mistake, not an image: refuse it before allocating. */
#define IMG_MAX_PIXELS ((int64_t)1 << 28)

/* ---- writing ----------------------------------------------------------------- */

static uint8_t img_to_byte_impl(float x, float lo, float scale)
{
    float t = (x - lo) * scale;
    if (!(t > 0.0f)) return 0; /* also NaN */
    if (t >= 255.0f) return 255;
    return (uint8_t)(t + 0.5f);
}

void img_to_bytes(const float *x, int64_t n, float lo, float hi, uint8_t *out)
{
    AG_ASSERT(lo < hi);
    float scale = 255.0f / (hi - lo);
    for (int64_t j = 0; j < n; j++) out[j] = img_to_byte_impl(x[j], lo, scale);
}

/* Writes buf (height rows of width * channels bytes) as path, replacing it whole. */
static int img_write_file_impl(const char *path, const uint8_t *buf, int width, int height,
                               int channels, ag_error *err)
{
    af_file f;
    if (af_begin(&f, path, err) != AG_OK) return AG_ERR;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)width;
    img.height = (png_uint_32)height;
    img.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    if (!png_image_write_to_stdio(&img, f.fp, 0, buf, 0, NULL)) {
        af_fail(&f, img.message, err);
        png_image_free(&img);
        return AG_ERR;
    }
    return af_commit(&f, err);
}

int img_write_grid(const char *path, const float *images, int n, int h, int w, int channels,
                   int rows, int cols, float lo, float hi, int pad, ag_error *err)
{
    AG_ASSERT(channels == 1 || channels == 3);
    AG_ASSERT(n >= 0 && rows > 0 && cols > 0 && n <= rows * cols);
    AG_ASSERT(h > 0 && w > 0 && pad >= 0 && lo < hi);

    int width = cols * w + (cols + 1) * pad, height = rows * h + (rows + 1) * pad;
    size_t stride = (size_t)width * (size_t)channels;
    uint8_t *buf = ag_xcalloc((size_t)height, stride);

    float scale = 255.0f / (hi - lo);
    size_t plane = (size_t)h * (size_t)w;
    for (int i = 0; i < n; i++) {
        const float *src = images + (size_t)i * (size_t)channels * plane;
        int top = pad + (i / cols) * (h + pad), left = pad + (i % cols) * (w + pad);
        for (int y = 0; y < h; y++) {
            uint8_t *dst = buf + (size_t)(top + y) * stride + (size_t)left * (size_t)channels;
            for (int x = 0; x < w; x++)
                for (int c = 0; c < channels; c++)
                    dst[x * channels + c] =
                        img_to_byte_impl(src[c * plane + (size_t)y * (size_t)w + x], lo, scale);
        }
    }

    int rc = img_write_file_impl(path, buf, width, height, channels, err);
    free(buf);
    return rc;
}

int img_write_rgb(const char *path, const uint8_t *rgb, int w, int h, ag_error *err)
{
    AG_ASSERT(w > 0 && h > 0);
    return img_write_file_impl(path, rgb, w, h, 3, err);
}

/* ---- reading ----------------------------------------------------------------- */

int img_read_gray(const char *path, img_gray *out, ag_error *err)
{
    memset(out, 0, sizeof *out);
    char why[128];
    FILE *f = ag_fopen_regular(path, why, sizeof why);
    if (!f) return ag_errorf(err, img_noloc, "%s: %s", path, why);

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    int rc = AG_OK;
    if (!png_image_begin_read_from_stdio(&img, f)) {
        rc = ag_errorf(err, img_noloc, "%s: not a readable PNG: %s", path, img.message);
    } else if ((int64_t)img.width * img.height > IMG_MAX_PIXELS) {
        rc = ag_errorf(err, img_noloc, "%s: image of %ux%u pixels is too large", path,
                       (unsigned)img.width, (unsigned)img.height);
    } else {
        img.format = PNG_FORMAT_GRAY;
        /* Zeroed, because libpng composites alpha onto what the buffer holds. */
        out->pixels = ag_xcalloc(PNG_IMAGE_SIZE(img), 1);
        out->h = (int)img.height;
        out->w = (int)img.width;
        if (!png_image_finish_read(&img, NULL, out->pixels, 0, NULL))
            rc = ag_errorf(err, img_noloc, "%s: not a readable PNG: %s", path, img.message);
    }
    png_image_free(&img);
    fclose(f);
    if (rc != AG_OK) img_gray_free(out);
    return rc;
}

void img_gray_free(img_gray *img)
{
    free(img->pixels);
    memset(img, 0, sizeof *img);
}
