#!/bin/sh
# Representation learning: a VAE trained one epoch, its 'latent' section (the encoder's
# mu) written by aigc-run encode as a features data set, and a linear probe trained on
# it that classifies the test split well above chance. Then the refusals, each with its
# message and exit code.
. "$(dirname "$0")/lib.sh"

# p) a short VAE run
run specs/vae.yaml --epochs 1 --out "$TMP/vae" --progress lines
exits_0 "one VAE epoch exits 0"

# p) encode: the files, printed in the order written
L=$TMP/latent
run encode specs/vae.yaml --checkpoint "$TMP/vae" --section latent -o "$L"
exits_0 "encode exits 0"
is "$(cat "$OUT")" "$L/train-features-idx2-float
$L/train-labels-idx1-ubyte
$L/t10k-features-idx2-float
$L/t10k-labels-idx1-ubyte
$L/scatter.png" "encode prints the five files it wrote"
like "$ERR1" "latent: 20 features; train 9000, test 1000; the scatter's axes hold *% and *% of the variance" \
    "encode says what it encoded on stderr"

# p) the headers: float32 (0x0d), 2 dimensions, [9000, 20] and [1000, 20]; then the sizes
head12() { od -An -tx1 -N12 "$1" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'; }
is "$(head12 "$L/train-features-idx2-float")" "00 00 0d 02 00 00 23 28 00 00 00 14" \
    "train features: IDX float32, [9000, 20]"
is "$(head12 "$L/t10k-features-idx2-float")" "00 00 0d 02 00 00 03 e8 00 00 00 14" \
    "test features: IDX float32, [1000, 20]"
size() { wc -c <"$1" | tr -d ' '; }
is "$(size "$L/train-features-idx2-float") $(size "$L/t10k-features-idx2-float")" "720012 80012" \
    "features: 12 bytes of header and 4 per value"
is "$(size "$L/train-labels-idx1-ubyte") $(size "$L/t10k-labels-idx1-ubyte")" "9008 1008" \
    "labels: 8 bytes of header and one per image"

# p) the labels are the data's, in its order
gzip -dc data/mnist/train-labels-idx1-ubyte.gz | cmp -s - "$L/train-labels-idx1-ubyte"
ok $? "the training labels are data/mnist's, byte for byte"
gzip -dc data/mnist/t10k-labels-idx1-ubyte.gz | cmp -s - "$L/t10k-labels-idx1-ubyte"
ok $? "the test labels are data/mnist's, byte for byte"

# p) the same weights encode the same features
run encode specs/vae.yaml --checkpoint "$TMP/vae" -o "$TMP/again"
cmp -s "$L/train-features-idx2-float" "$TMP/again/train-features-idx2-float" &&
    cmp -s "$L/t10k-features-idx2-float" "$TMP/again/t10k-features-idx2-float"
ok $? "without --section, the first features section; a second encode writes the same bytes"

# p) the scatter: a PNG of 576x504 (a 480-pixel plot, margins, the legend of 10 classes)
is "$(od -An -tx1 -N8 "$L/scatter.png" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')" "89 50 4e 47 0d 0a 1a 0a" \
    "scatter.png is a PNG"
is "$(od -An -tu1 -j16 -N8 "$L/scatter.png" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')" "0 0 2 64 0 0 1 248" \
    "scatter.png is 576x504"

# p) a linear probe on the features: a classifier well above chance (0.1)
run check specs/linear-probe.yaml --set data.path="$L"
is "$(sed -n 1p "$OUT")" "data: features from $L: 20 per item, 10 classes; train 9000, test 1000" \
    "check describes the features data set"
run specs/linear-probe.yaml --set data.path="$L" --epochs 5 --out "$TMP/probe" --progress lines
exits_0 "the linear probe trains"
run eval specs/linear-probe.yaml --set data.path="$L" --checkpoint "$TMP/probe"
acc=$(sed -n 's/^test_accuracy //p' "$OUT")
is_number "$acc"
ok $? "eval reports test_accuracy ($acc)"
less 0.5 "$acc"
ok $? "the probe's test accuracy $acc is far above chance (0.1): the latent holds the class"

# p) refusals
expect_error 2 "aigc-run: encode needs -o DIR, the directory to write" encode specs/vae.yaml
expect_error 2 "aigc-run: -n is for sample and eval" encode specs/vae.yaml -n 5 -o "$TMP/x"
expect_error 1 "specs/vae.yaml: sample section 'prior' gives images, not features: encode runs a section with 'features:', like specs/vae.yaml's 'latent'" \
    encode specs/vae.yaml --checkpoint "$TMP/vae" --section prior -o "$TMP/x"
expect_error 1 "specs/vae.yaml: no sample section 'latnet'; did you mean 'latent'?" \
    encode specs/vae.yaml --checkpoint "$TMP/vae" --section latnet -o "$TMP/x"
expect_error 1 "specs/gan.yaml: the spec has no features section: add one to sample:, like specs/vae.yaml's 'latent: {steps: [...], features: mu}'" \
    encode specs/gan.yaml -o "$TMP/x"
expect_error 1 "specs/vae.yaml: sample section 'latent' gives features, not images: write them with aigc-run encode specs/vae.yaml --section latent -o DIR" \
    sample specs/vae.yaml --checkpoint "$TMP/vae" --section latent
[ ! -e "$TMP/x" ]
ok $? "a refused encode makes no directory"
: >"$TMP/file"
expect_error 1 "$TMP/file/sub: cannot create the directory: $TMP/file: Not a directory" \
    encode specs/vae.yaml --checkpoint "$TMP/vae" -o "$TMP/file/sub"

done_testing
