/*
 * test_png.c — sample grids: layout, value mapping (clamping, NaN), the write-then-
 * rename protocol, and the messages for unwritable and unreadable paths. Each grid is
 * read back with img_read_gray.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aigc/png.h"
#include "tap.h"
#include "tmpdir.h"

static int px(const img_gray *g, int y, int x)
{
    return g->pixels[(size_t)y * (size_t)g->w + (size_t)x];
}

/* Three 2x3 gray images in a 2x2 grid with 1 pixel of padding: 7 rows of 9 pixels. */
static void test_gray_grid(void)
{
    const float images[3][2][3] = {
        {{-1.0f, 0.0f, 1.0f}, {0.5f, -0.5f, 0.25f}},
        {{2.0f, -7.0f, NAN}, {INFINITY, -INFINITY, 0.999f}},
        {{1.0f, 1.0f, 1.0f}, {1.0f, 1.0f, 1.0f}},
    };
    /* (v + 1) / 2 * 255, rounded half up; out of range clamps; NaN is 0. */
    const int want[3][2][3] = {
        {{0, 128, 255}, {191, 64, 159}},
        {{255, 0, 0}, {255, 0, 255}},
        {{255, 255, 255}, {255, 255, 255}},
    };
    const char *path = in_tmp("grid.png");
    ag_error err = {{0}};
    int rc = img_write_grid(path, &images[0][0][0], 3, 2, 3, 1, 2, 2, -1.0f, 1.0f, 1, &err);
    if (!ok(rc == AG_OK, "gray grid written")) diag("%s", err.msg);
    ok(access(in_tmp("grid.png.tmp"), F_OK) != 0, "no temporary file left behind");

    img_gray g;
    rc = img_read_gray(path, &g, &err);
    if (!ok(rc == AG_OK, "gray grid read back")) {
        diag("%s", err.msg);
        return;
    }
    ok(g.h == 7 && g.w == 9, "grid is 7x9 (got %dx%d)", g.h, g.w);

    int tiles_ok = 1;
    for (int i = 0; i < 3; i++) {
        int top = 1 + (i / 2) * 3, left = 1 + (i % 2) * 4;
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                if (px(&g, top + y, left + x) != want[i][y][x]) {
                    diag("image %d (%d, %d): got %d, want %d", i, y, x,
                         px(&g, top + y, left + x), want[i][y][x]);
                    tiles_ok = 0;
                }
    }
    ok(tiles_ok, "tiles in row-major order, values mapped, clamped, NaN to 0");

    int border_ok = 1;
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 9; x++) {
            int in_tile = 0;
            for (int i = 0; i < 3; i++) {
                int top = 1 + (i / 2) * 3, left = 1 + (i % 2) * 4;
                in_tile |= y >= top && y < top + 2 && x >= left && x < left + 3;
            }
            if (!in_tile && px(&g, y, x) != 0) border_ok = 0;
        }
    ok(border_ok, "padding and the unused fourth tile are black");
    img_gray_free(&g);
    ok(g.pixels == NULL && g.h == 0, "free empties the image");
}

/* RGB, NCHW: the planes must be interleaved into pixels. */
static void test_rgb_grid(void)
{
    /* One 1x2 image: a white pixel, then a black one, with channels as planes. */
    const float image[3][1][2] = {{{1.0f, 0.0f}}, {{1.0f, 0.0f}}, {{1.0f, 0.0f}}};
    const char *path = in_tmp("rgb.png");
    ag_error err = {{0}};
    int rc = img_write_grid(path, &image[0][0][0], 1, 1, 2, 3, 1, 1, 0.0f, 1.0f, 0, &err);
    if (!ok(rc == AG_OK, "RGB grid written")) diag("%s", err.msg);

    img_gray g;
    rc = img_read_gray(path, &g, &err);
    if (!ok(rc == AG_OK, "RGB grid read back as gray")) {
        diag("%s", err.msg);
        return;
    }
    ok(g.h == 1 && g.w == 2 && px(&g, 0, 0) == 255 && px(&g, 0, 1) == 0,
       "white then black survive the conversion to gray");
    img_gray_free(&g);
}

/* Writing over an existing file replaces it whole. */
static void test_overwrite(void)
{
    const float a[1] = {1.0f}, b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const char *path = in_tmp("again.png");
    ag_error err = {{0}};
    img_write_grid(path, a, 1, 1, 1, 1, 1, 1, 0.0f, 1.0f, 0, &err);
    int rc = img_write_grid(path, b, 1, 2, 2, 1, 1, 1, 0.0f, 1.0f, 0, &err);
    img_gray g;
    if (rc == AG_OK) rc = img_read_gray(path, &g, &err);
    if (!ok(rc == AG_OK, "second write over an existing file")) {
        diag("%s", err.msg);
        return;
    }
    ok(g.h == 2 && g.w == 2 && px(&g, 1, 1) == 0, "the file holds the second grid");
    img_gray_free(&g);
}

static void test_errors(void)
{
    const float x[1] = {0.0f};
    char want[1024];
    ag_error err = {{0}};

    const char *path = in_tmp("no/such/dir/grid.png");
    int rc = img_write_grid(path, x, 1, 1, 1, 1, 1, 1, 0.0f, 1.0f, 0, &err);
    ok(rc == AG_ERR, "unwritable path refused");
    snprintf(want, sizeof want, "%s: cannot write: No such file or directory", path);
    is_str(err.msg, want, "unwritable path: message names the path and the reason");

    /* A directory where the file should go: the rename fails, the .tmp is removed. */
    mkdir(in_tmp("taken.png"), 0755);
    rc = img_write_grid(in_tmp("taken.png"), x, 1, 1, 1, 1, 1, 1, 0.0f, 1.0f, 0, &err);
    ok(rc == AG_ERR, "a directory in the way refused");
    snprintf(want, sizeof want, "%s: cannot write: Is a directory", in_tmp("taken.png"));
    is_str(err.msg, want, "a directory in the way: message");
    ok(access(in_tmp("taken.png.tmp"), F_OK) != 0, "a directory in the way: no .tmp left");

    img_gray g;
    rc = img_read_gray(in_tmp("missing.png"), &g, &err);
    ok(rc == AG_ERR && g.pixels == NULL, "missing PNG refused");
    snprintf(want, sizeof want, "%s: No such file or directory", in_tmp("missing.png"));
    is_str(err.msg, want, "missing PNG: message");

    FILE *f = fopen(in_tmp("text.png"), "w");
    fputs("not a png\n", f);
    fclose(f);
    rc = img_read_gray(in_tmp("text.png"), &g, &err);
    ok(rc == AG_ERR && g.pixels == NULL, "a text file refused");
    snprintf(want, sizeof want, "%s: not a readable PNG: ", in_tmp("text.png"));
    ok(strncmp(err.msg, want, strlen(want)) == 0, "a text file: message");
    diag("%s", err.msg);

    ok(mkfifo(in_tmp("fifo.png"), 0600) == 0, "a FIFO is made");
    rc = img_read_gray(in_tmp("fifo.png"), &g, &err);
    ok(rc == AG_ERR && g.pixels == NULL, "a FIFO as a PNG input is refused, without blocking");
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", in_tmp("fifo.png"));
    is_str(err.msg, want, "  with the message");
}

int main(void)
{
    tmp_open("png");
    test_gray_grid();
    test_rgb_grid();
    test_overwrite();
    test_errors();
    tmp_close();
    return tap_done();
}
