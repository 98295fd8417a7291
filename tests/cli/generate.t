#!/bin/sh
# Generated data sets (docs/spec.md, "sample"): `sample --format idx` writes a section's
# images, and with `label:` their classes, as a training split that a spec reads as its
# data; `data.test_path` tests a model trained on them on the real test split; and
# `eval --quality` reports how often the classifier sees the class each image was asked
# for (class_match, docs/quality.md).
. "$(dirname "$0")/lib.sh"

# od's bytes of FILE from OFFSET on, COUNT of them, as one line of numbers.
bytes() {
    od -A n -t u1 -j "$2" -N "$3" "$1" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'
}

size() {
    wc -c <"$1" | tr -d ' '
}

# g) a conditional GAN after one epoch (specs/cgan.yaml: label: cycle(n, 10))
G=$TMP/cgan
run specs/cgan.yaml --epochs 1 --out "$G" --progress lines
exits_0 "one epoch of specs/cgan.yaml exits 0"

# The grid of a section with label: keeps its columns under -n, a digit each: 30 images
# are 3 rows of 10 (28-pixel cells, 2 between them: 302x92), not 6x5.
run sample specs/cgan.yaml --checkpoint "$G" -n 30 -o "$TMP/30.png"
is "$RC" 0 "sample -n 30 exits 0"
is "$(od -A n -t u1 -j 16 -N 8 "$TMP/30.png" | awk '{ printf "%dx%d", $3 * 256 + $4, $7 * 256 + $8 }')" 302x92 \
    "sample -n 30 of a section with label: a 3x10 grid, its columns kept"

# 300 images: a round of 250 and one of 50, as eval --quality draws them.
D=$TMP/gen
run sample specs/cgan.yaml --checkpoint "$G" --format idx -n 300 -o "$D"
is "$RC" 0 "sample --format idx exits 0"
is "$(cat "$OUT")" "$D/train-images-idx3-ubyte
$D/train-labels-idx1-ubyte" "it prints the two files it wrote"
is "$(size "$D/train-images-idx3-ubyte")" $((16 + 300 * 784)) "the images: a 16-byte header and 300 x 784 bytes"
is "$(bytes "$D/train-images-idx3-ubyte" 0 16)" "0 0 8 3 0 0 1 44 0 0 0 28 0 0 0 28" \
    "the images' header: 00 00 08 03, then 300, 28, 28 big-endian"
is "$(size "$D/train-labels-idx1-ubyte")" $((8 + 300)) "the labels: an 8-byte header and 300 bytes"
is "$(bytes "$D/train-labels-idx1-ubyte" 0 8)" "0 0 8 1 0 0 1 44" "the labels' header: 00 00 08 01, then 300"
is "$(bytes "$D/train-labels-idx1-ubyte" 8 300 | awk '{ for (k = 1; k <= NF; k++) if ($k != (k - 1) % 10) { print "image " k - 1 ": " $k; exit } print "cycle" }')" \
    cycle "the labels are cycle(n, 10) in each round: image i asked for i mod 10"
nonzero=$(od -A n -t u1 -v -j 16 "$D/train-images-idx3-ubyte" | tr -s ' ' '\n' | grep -cv '^0*$')
less 1000 "$nonzero"
ok $? "the images have ink ($nonzero pixels above 0)"
run sample specs/cgan.yaml --checkpoint "$G" --format idx -n 300 -o "$TMP/again"
cmp -s "$D/train-images-idx3-ubyte" "$TMP/again/train-images-idx3-ubyte"
ok $? "the same seed draws the same images"

# g) the directory is a data set: the classifier trains one epoch on it and is tested on
# the real test split (the Classification Accuracy Score's setting).
CAS=$TMP/cas
run specs/classifier.yaml --set "data.path=$D" --set data.test_path=data/mnist --epochs 1 --out "$CAS" \
    --progress lines
exits_0 "the classifier trains on the generated directory (data.path) with data.test_path"
is_number "$(json_field "$CAS/metrics.jsonl" epoch 1 test_accuracy)"
ok $? "its epoch row has a test accuracy, measured on data/mnist's t10k files"
run eval specs/classifier.yaml --checkpoint "$CAS" --set "data.path=$D" --set data.test_path=data/mnist
grep -q '^test_accuracy ' "$OUT"
ok $? "eval with data.test_path reports the real test split's accuracy"

# g) a section without label: writes the images alone.
sed '/^  label: /d' specs/cgan.yaml >"$TMP/nolabel.yaml"
run sample "$TMP/nolabel.yaml" --checkpoint "$G" --format idx -n 10 -o "$TMP/nolabel"
is "$(cat "$OUT")" "$TMP/nolabel/train-images-idx3-ubyte" "without label: only the images file"
[ ! -e "$TMP/nolabel/train-labels-idx1-ubyte" ]
ok $? "... and no labels file"
# Over a directory that holds an earlier draw's labels, those go with the images they
# belonged to (the loader would take them for the new images' classes).
run sample "$TMP/nolabel.yaml" --checkpoint "$G" --format idx -n 10 -o "$D"
[ "$RC" = 0 ] && [ -e "$D/train-images-idx3-ubyte" ] && [ ! -e "$D/train-labels-idx1-ubyte" ]
ok $? "without label: over a directory with labels, the stale labels file is removed"

# g) a section that returns the test split with its labels writes the split itself,
# byte for byte: images mapped from range [0, 1] to 0..255 as the grid maps them.
cat >"$TMP/probe.yaml" <<'EOF'
name: probe
seed: 0
data: {dataset: mnist, path: data/mnist, batch: 500, x: flatten(pixels / 255)}
models:
  M: {in: 784, layers: [linear 1]}
train:
  epochs: 1
  optimizers: {opt: {type: sgd, lr: 0, params: M}}
  step:
    - loss = mean(M(x))
    - update opt: loss
sample:
  real:
    image: test_x
    label: test_label
    range: [0, 1]
  halves:
    image: test_x
    label: test_label / 2
    range: [0, 1]
  noise:
    image: rand(n, 784)
    label: test_label
EOF
P=$TMP/probe
run "$TMP/probe.yaml" --out "$P" --progress lines
is "$RC" 0 "the probe spec trains"
run sample "$TMP/probe.yaml" --checkpoint "$P" --format idx -n 1000 -o "$TMP/copy"
is "$RC" 0 "sample --section real --format idx -n 1000 exits 0"
gzip -dc data/mnist/t10k-images-idx3-ubyte.gz | cmp -s - "$TMP/copy/train-images-idx3-ubyte"
ok $? "the test images come back byte for byte"
gzip -dc data/mnist/t10k-labels-idx1-ubyte.gz | cmp -s - "$TMP/copy/train-labels-idx1-ubyte"
ok $? "... and their labels"

# g) class_match: the probe's labels are the test split's, so the classifier's share at
# the requested class is its test accuracy; the cGAN's is a share in [0, 1].
C=$TMP/classifier
run specs/classifier.yaml --epochs 1 --out "$C" --progress lines
is "$RC" 0 "one epoch of the classifier on the real data"
run eval specs/classifier.yaml --checkpoint "$C" --json
acc=$(sed -n 's/.*"test_accuracy":\([^,}]*\).*/\1/p' "$OUT")
run eval "$TMP/probe.yaml" --checkpoint "$P" --section real --quality "specs/classifier.yaml:$C" --json
match=$(sed -n 's/.*"class_match":\([^,}]*\).*/\1/p' "$OUT")
awk -v a="$match" -v b="$acc" 'BEGIN { d = a - b; exit !(a != "" && d * d < 1e-6) }'
ok $? "class_match of the test split with its own labels is the test accuracy ($match, $acc)"
run eval specs/cgan.yaml --checkpoint "$G" --quality "specs/classifier.yaml:$C" -n 300
is "$RC" 0 "eval --quality of the cGAN exits 0"
match=$(sed -n 's/^class_match //p' "$OUT")
is_number "$match" && ! less "$match" 0 && ! less 1 "$match"
ok $? "it prints class_match, a share in [0, 1] ($match)"
run eval "$TMP/nolabel.yaml" --checkpoint "$G" --quality "specs/classifier.yaml:$C" -n 300 --json
is "$RC:$(grep -c class_match "$OUT")" "0:0" "a section without label: reports no class_match"

# g) errors
expect_error 2 "aigc-run: --format idx writes a directory: give -o DIR" \
    sample specs/cgan.yaml --checkpoint "$G" --format idx
expect_error 2 "aigc-run: --format takes png or idx, not 'gif'" \
    sample specs/cgan.yaml --checkpoint "$G" --format gif -o "$TMP/x"
expect_error 2 "aigc-run: --format is for sample" eval specs/cgan.yaml --checkpoint "$G" --format idx
expect_error 2 "aigc-run: -n expects a whole number in [1, 4096], got '5000'" \
    sample specs/cgan.yaml --checkpoint "$G" -n 5000
expect_error 1 "--format idx: sample section 'sample' gives text, and IDX files hold images: write its texts with -o FILE" \
    sample tests/specs/tiny-gpt.yaml --format idx -o "$TMP/text"
[ ! -e "$TMP/text" ]
ok $? "a refused --format idx makes no directory"
expect_error 1 "$TMP/probe.yaml:19:23: halves: 'label' gives 0.5 for image 1, not a class of the data's: a whole number from 0 to 9" \
    sample "$TMP/probe.yaml" --checkpoint "$P" --section halves --format idx -n 300 -o "$TMP/halves"
ls "$TMP/halves" >"$TMP/left"
is "$(cat "$TMP/left")" "" "a refused label leaves no file, not even a temporary one"
run eval "$TMP/probe.yaml" --checkpoint "$P" --section halves --quality "specs/classifier.yaml:$C" -n 300
is "$RC:$ERR1" "1:$TMP/probe.yaml:19:23: halves: 'label' gives 0.5 for image 1, not a class of the data's: a whole number from 0 to 9" \
    "eval --quality checks the labels alike"
# Without the data set, the checkpoint's record of it serves a section whose images are
# noise, but not one whose labels are the test split's.
run sample "$TMP/probe.yaml" --checkpoint "$P" --section noise --format idx -o "$TMP/noise" \
    --set data.path=$TMP/none
is "$RC:$ERR1" "1:--set data.path=$TMP/none: cannot load the training data: $TMP/none: No such file or directory (sample section 'noise' reads the test split)" \
    "labels that read the test split need the data set"
sed 's|^  label: .*|  label: cycle(n, 12)|' specs/cgan.yaml >"$TMP/label12.yaml"
expect_error 1 "$TMP/label12.yaml:35:10: sample: 'label' gives values in [0, 11], but the data's classes are 0 to 9" \
    check "$TMP/label12.yaml"
sed 's|^  label: .*|  label: one_hot(cycle(n, 10), 10)|' specs/cgan.yaml >"$TMP/onehot.yaml"
expect_error 1 "$TMP/onehot.yaml:35:10: sample: 'label' must give one class per image, [100], not [100, 10]" \
    check "$TMP/onehot.yaml"
expect_error 1 "--set data.test_path=tests: cannot load the test data: tests: no t10k images: looked for t10k-images-idx3-ubyte and t10k-images-idx3-ubyte.gz" \
    check specs/classifier.yaml --set data.test_path=tests

done_testing
