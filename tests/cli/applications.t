#!/bin/sh
# The application specs: conditional diffusion with classifier-free guidance
# (specs/ddpm-cond.yaml, its U-Net shrunk with --set so that it trains in seconds) and
# style transfer with a conditional VAE (specs/cvae.yaml, two epochs): the losses fall,
# the label dropout drops a tenth of the labels, the samples are finite numbers, the
# guidance scale is an input with a range, the style grid has a row per test digit and a
# column for it and for each class, the generating sections label their images with the
# digits asked for (--format idx), and the conditional VAE's latent encodes.
. "$(dirname "$0")/lib.sh"

# A PNG's size from its IHDR: WIDTHxHEIGHT.
png_size() {
    od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", (($1 * 256 + $2) * 256 + $3) * 256 + $4, (($5 * 256 + $6) * 256 + $7) * 256 + $8 }'
}

# ------------------------------------------------------------------ ddpm-cond --

DC=specs/ddpm-cond.yaml
run check "$DC"
is "$RC" 0 "check $DC exits 0"
grep -q '^  emb: embedding 11 128 *\[B, 128\] *1408 ' "$OUT"
ok $? "the class embedding: 11 rows (10 digits and the null class) of 128, added to the time embedding's"
grep -q '^all models: 416,577 parameters, ' "$OUT"
ok $? "416,577 parameters: specs/ddpm.yaml's 415,169 and the embedding's 1,408"

# The same inputs (x, t, c) and the same sample sections, on a U-Net of one block.
TINY="models.eps_model.nodes={emb: 'silu(linear(time_embedding(t, 8), 8)) + embedding(c, 11, 8)', h: 'silu(conv2d(x, 4, 3, 1, 1) + reshape(linear(emb, 4), 4, 1, 1))', eps: 'conv2d(h, 1, 3, 1, 1)'}"
run "$DC" --epochs 2 --out "$TMP/dc" --progress lines --set "$TINY"
exits_0 "two epochs of the shrunk conditional DDPM exit 0"
M=$TMP/dc/metrics.jsonl
falls "$M" loss
train1=$(json_field "$M" epoch 1 train_loss)
is "$(png_size "$TMP/dc/samples-epoch-002.png")" 302x302 "each epoch's grid: w = 0, 10x10"

# The spec's own step, with the share of dropped labels logged after it.
STEP=$(awk '/^  step:$/ { on = 1; next }
    on && /^    - / { sub(/^    - /, ""); sub(/ *#.*$/, ""); printf "%s'\''%s'\''", (n++ ? ", " : "["), $0; next }
    on { exit }
    END { print ", '\''dropped = mean(drop)'\'']" }' "$DC")
run "$DC" --epochs 1 --out "$TMP/drop" --progress lines --set "$TINY" --set "train.step=$STEP" \
    --set "train.log=[loss, dropped]"
dropped=$(json_field "$TMP/drop/metrics.jsonl" epoch 1 train_dropped)
less 0.09 "$dropped" && less "$dropped" 0.11
ok $? "label dropout gives the null class to about a tenth of the training images: $dropped of 9,000"
is "$(json_field "$TMP/drop/metrics.jsonl" epoch 1 train_loss)" "$train1" \
    "... and logging it changes nothing: the same loss"

dsample() { run sample "$DC" --checkpoint "$TMP/dc" --set "$TINY" "$@"; }
dsample --section w3 -o "$TMP/w3.png"
is "$RC,$(cat "$OUT")" "0,$TMP/w3.png" "sample --section w3 exits 0 and prints its grid's path"
is "$(png_size "$TMP/w3.png")" 302x302 "... a 10x10 grid: ten rows of the digits 0 to 9"
dsample --section w0 --input w=3 -o "$TMP/w0-3.png"
cmp -s "$TMP/w0-3.png" "$TMP/w3.png"
ok $? "the sections differ in their scale only: --section w0 --input w=3 draws w3's grid"
dsample --section w0 -o "$TMP/w0.png"
! cmp -s "$TMP/w0.png" "$TMP/w3.png"
ok $? "guidance changes the samples: w = 0 and w = 3 draw different grids"
dsample --section w3 --input w=20 --set "sample.w3.image=1 + abs(x) * 0" -o "$TMP/finite.png"
dsample --section w3 --set "sample.w3.image=ones_like(x)" -o "$TMP/white.png"
cmp -s "$TMP/finite.png" "$TMP/white.png"
ok $? "every pixel of every sample at w = 20, the range's top, is a finite number"
# The labels a section asks for: cycle(n, 10) in every section, the cas section included.
labels() { od -An -tu1 -j8 -v "$1" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'; }
dsample --section cas -n 12 --format idx -o "$TMP/cas"
is "$RC" 0 "sample --section cas --format idx exits 0"
is "$(labels "$TMP/cas/train-labels-idx1-ubyte")" "0 1 2 3 4 5 6 7 8 9 0 1" \
    "... and writes the digits each image was asked for, 0 to 9 in turn"
is "$(wc -c <"$TMP/cas/train-images-idx3-ubyte" | tr -d ' ')" $((16 + 12 * 784)) "... beside 12 images of 28x28"
expect_error 2 "aigc-run: --input w=21: 'w' must be in [0, 20] (the spec's range), got '21'" \
    sample "$DC" --checkpoint "$TMP/dc" --set "$TINY" --section w3 --input w=21
expect_error 2 "aigc-run: --input w=-1: 'w' must be in [0, 20] (the spec's range), got '-1'" \
    sample "$DC" --checkpoint "$TMP/dc" --set "$TINY" --input w=-1

# ------------------------------------------------------------------------ cvae --

CV=specs/cvae.yaml
run check "$CV"
is "$RC" 0 "check $CV exits 0"
totals=$(awk '/^model /{m = $2} /^  total:/{print m, $2, $3}' "$OUT")
is "$totals" "encoder 319,604 parameters,
decoder 319,584 parameters," "the encoder sees 784 pixels and 10 one-hot; the decoder 2 z and 10 one-hot"

run "$CV" --epochs 2 --out "$TMP/cv" --progress lines
exits_0 "two epochs of the conditional VAE exit 0"
M=$TMP/cv/metrics.jsonl
falls "$M" loss_per_image   # BCE-sum + KLD per image
# 11 columns and 10 rows of 28x28, 2 pixels between and around them.
is "$(png_size "$TMP/cv/style-epoch-002.png")" 332x302 \
    "the style grid: a row per test digit, the digit and then one column per class"
is "$(png_size "$TMP/cv/samples-epoch-002.png")" 302x302 "the prior grid: ten rows of the digits 0 to 9"

run sample "$CV" --checkpoint "$TMP/cv" --section style -o "$TMP/style.png"
cmp -s "$TMP/style.png" "$TMP/cv/style-epoch-002.png"
ok $? "sample --section style draws the last epoch's style grid again"
run sample "$CV" --checkpoint "$TMP/cv" --section style --set "sample.style.image=1 + abs(out) * 0" -o "$TMP/finite.png"
run sample "$CV" --checkpoint "$TMP/cv" --section style --set "sample.style.image=ones_like(out)" -o "$TMP/white.png"
cmp -s "$TMP/finite.png" "$TMP/white.png"
ok $? "every decoded image is finite"
# Column 0 shows the test digit itself: the same pixels as the decoder's grid of test_x.
run sample "$CV" --checkpoint "$TMP/cv" --section style --set "sample.style.image=src * seen" -o "$TMP/src.png"
run sample "$CV" --checkpoint "$TMP/cv" --section style --set "sample.style.image=src * interpolate(test_x, test_x, 11)" -o "$TMP/src2.png"
cmp -s "$TMP/src.png" "$TMP/src2.png"
ok $? "column 0 holds the test digits as they are"

run sample "$CV" --checkpoint "$TMP/cv" --section prior -n 10 --format idx -o "$TMP/prior"
is "$(labels "$TMP/prior/train-labels-idx1-ubyte")" "0 1 2 3 4 5 6 7 8 9" \
    "sample --section prior --format idx labels each image with the digit it was asked for"
run encode "$CV" --checkpoint "$TMP/cv" --section latent -o "$TMP/latent"
is "$RC" 0 "encode --section latent exits 0"
like "$ERR1" "latent: 2 features; train 9000, test 1000;*" "... two features: z's mean, given the true label"

# --------------------------------------------------------------- cvae-fashion --

FASHION=${FASHION:-/usr/share/datasets/fashion-mnist}
if [ -e "$FASHION/train-images-idx3-ubyte.gz" ] || [ -e "$FASHION/train-images-idx3-ubyte" ]; then
    run check specs/cvae-fashion.yaml --set data.path="$FASHION"
    is "$RC" 0 "check specs/cvae-fashion.yaml exits 0"
else
    pass "# SKIP no Fashion-MNIST in $FASHION"
fi

done_testing
