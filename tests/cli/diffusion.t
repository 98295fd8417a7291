#!/bin/sh
# Sampling a diffusion model (tests/specs/tiny-ddpm.yaml, one epoch): the strip of one
# trajectory beside the grid, and inpainting with --inpaint and --mask: the known
# pixels come out exactly as given, the filled ones finite; the inputs' mistakes.
. "$(dirname "$0")/lib.sh"

# A PNG's size from its IHDR: WIDTHxHEIGHT.
png_size() {
    od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", (($1 * 256 + $2) * 256 + $3) * 256 + $4, (($5 * 256 + $6) * 256 + $7) * 256 + $8 }'
}

SPEC=tests/specs/tiny-ddpm.yaml
run "$SPEC" --out "$TMP/run" --progress lines
is "$RC" 0 "one epoch of the tiny diffusion model exits 0"
CK=$TMP/run
# 4 frames of 28x28 in a row, 2 pixels between and around them.
is "$(png_size "$TMP/run/samples-epoch-001-strip.png")" 122x32 \
    "each epoch's grid has its strip beside it: 4 frames in a row"

run sample "$SPEC" --checkpoint "$CK" --section ddpm -o "$TMP/d.png"
is "$RC" 0 "sample --section ddpm exits 0"
is "$(cat "$OUT")" "$TMP/d.png
$TMP/d-strip.png" "sample prints the grid's path and the strip's"
cmp -s "$TMP/d-strip.png" "$TMP/run/samples-epoch-001-strip.png"
ok $? "the strip from the checkpoint is the last epoch's: the same noise, the same averaged weights"

IN="--inpaint tests/data/digit.png --mask tests/data/mask-bottom.png"
# shellcheck disable=SC2086 # $IN is a list of arguments
run sample "$SPEC" --checkpoint "$CK" $IN -o "$TMP/fill.png"
is "$RC" 0 "sample --inpaint IMAGE --mask MASK exits 0"
is "$(cat "$OUT")" "$TMP/fill.png" "... drawing the section inpaint"
is "$(png_size "$TMP/fill.png")" 62x62 "... a 2x2 grid of the 4 fillings"
# shellcheck disable=SC2086
run sample "$SPEC" --checkpoint "$CK" --section inpaint --input picture=tests/data/digit.png \
    --input mask=tests/data/mask-bottom.png -o "$TMP/fill2.png"
cmp -s "$TMP/fill.png" "$TMP/fill2.png"
ok $? "--inpaint F --mask M is --section inpaint --input picture=F --input mask=M"
# The reverse process carries its image from step to step; nothing it carries comes from
# the test split, so it runs without the data set, from the checkpoint's record of it.
# shellcheck disable=SC2086
run sample "$SPEC" --checkpoint "$CK" $IN -o "$TMP/fill-nodata.png" --set data.path="$TMP/nodata"
is "$RC" 0 "sample --inpaint without the data set exits 0"
cmp -s "$TMP/fill.png" "$TMP/fill-nodata.png"
ok $? "... and fills in the same images"
# A loop whose carried image starts from test images reads the test split.
expect_error 1 "--set data.path=$TMP/nodata: cannot load the training data: $TMP/nodata: No such file or directory (sample section 'ddpm' reads the test split)" \
    sample "$SPEC" --checkpoint "$CK" --section ddpm --set "sample.ddpm.steps.0=x = test_x" --set data.path="$TMP/nodata"
run sample "$SPEC" --checkpoint "$CK" --section black -o "$TMP/black.png"
run sample "$SPEC" --checkpoint "$CK" --section white -o "$TMP/white.png"
# shellcheck disable=SC2086
run sample "$SPEC" --checkpoint "$CK" $IN --section kept -o "$TMP/kept.png"
cmp -s "$TMP/kept.png" "$TMP/black.png"
ok $? "the known pixels (the mask's black top half) are the picture's, exactly, in every filling"
# shellcheck disable=SC2086
run sample "$SPEC" --checkpoint "$CK" $IN --section finite -o "$TMP/finite.png"
cmp -s "$TMP/finite.png" "$TMP/white.png"
ok $? "every pixel of every filling is a finite number"
# shellcheck disable=SC2086
run sample "$SPEC" --checkpoint "$CK" --inpaint tests/data/digit.png --mask tests/data/digit.png -o "$TMP/fill3.png"
! cmp -s "$TMP/fill.png" "$TMP/fill3.png"
ok $? "another mask fills other pixels"

expect_error 1 "tests/data/blank-32.png: the image is 32x32, but the data's images are 28x28 (input 'picture')" \
    sample "$SPEC" --checkpoint "$CK" --inpaint tests/data/blank-32.png --mask tests/data/mask-bottom.png
expect_error 1 "tests/data/blank-32.png: the image is 32x32, but the data's images are 28x28 (input 'mask')" \
    sample "$SPEC" --checkpoint "$CK" --inpaint tests/data/digit.png --mask tests/data/blank-32.png
expect_error 1 "$SPEC:51:7: sample section 'inpaint' needs an image for its input 'mask': give --input mask=FILE.png" \
    sample "$SPEC" --checkpoint "$CK" --inpaint tests/data/digit.png
expect_error 1 "$SPEC:50:7: sample section 'inpaint' needs an image for its input 'picture': give --input picture=FILE.png" \
    sample "$SPEC" --checkpoint "$CK" --mask tests/data/mask-bottom.png
expect_error 1 "$TMP/none.png: No such file or directory" \
    sample "$SPEC" --checkpoint "$CK" --inpaint "$TMP/none.png" --mask tests/data/mask-bottom.png
expect_error 2 "aigc-run: --inpaint tests/data/digit.png: no sample section has an input 'picture' (--inpaint and --mask are for a diffusion spec's inpainting section, like specs/ddpm.yaml's 'inpaint')" \
    sample specs/vae.yaml --checkpoint "$CK" --inpaint tests/data/digit.png --mask tests/data/mask-bottom.png
done_testing
