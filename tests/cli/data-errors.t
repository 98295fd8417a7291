#!/bin/sh
# Data errors: a missing directory, missing files and a truncated file are reported at
# the spec's data path with the file at fault, exit code 1, before any training.
. "$(dirname "$0")/lib.sh"

S=tests/specs
SPEC=$ROOT/$S/tiny-ae.yaml   # path: data/mnist, relative to where aigc-run runs

# h) a data directory that does not exist: a relative one is named with the directory it
# was looked for in
expect_error 1 "$S/missing-data.yaml:3:30: cannot load the training data: tests/specs/no-such-dir: No such file or directory (a relative path, read from the current directory $ROOT)" \
    check $S/missing-data.yaml
# Another data set's directory under this one's name: the dataset changed, not the path.
expect_error 1 "--set data.dataset=fashion-mnist: dataset 'fashion-mnist' with the path data/mnist, which is mnist's: give its own data.path (by default /usr/share/datasets/fashion-mnist)" \
    check specs/vae.yaml --set data.dataset=fashion-mnist
run check specs/vae-fashion.yaml --set data.dataset=mnist
is "$RC" 0 "a spec that leaves the path to the dataset: --set data.dataset=mnist takes mnist's"
expect_error 1 "--set data.path=$TMP/no-such-dir: cannot load the training data: $TMP/no-such-dir: No such file or directory" \
    check $S/missing-data.yaml --set data.path="$TMP/no-such-dir"

# A copy of data/mnist to break, in a scratch directory that aigc-run runs in.
broken() {
    rm -rf "$TMP/work"
    mkdir -p "$TMP/work/data/mnist"
    cp "$ROOT"/data/mnist/*-ubyte.gz "$TMP/work/data/mnist/"
}
in_work() {
    (cd "$TMP/work" || exit 99; "$AIGC_RUN" "$@" >"$OUT" 2>"$ERR")
    RC=$?
    ERR1=$(sed -n 1p "$ERR")
}

# The images cut to 100,000 bytes, well-formed gzip: the header's count is a lie.
broken
gzip -dc "$ROOT/data/mnist/train-images-idx3-ubyte.gz" | head -c 100000 | gzip -n \
    >"$TMP/work/data/mnist/train-images-idx3-ubyte.gz"
in_work check "$SPEC"
is "$ERR1" "$SPEC:5:30: cannot load the training data: data/mnist/train-images-idx3-ubyte.gz: truncated: header promises 9000 images of 28x28 (7056000 bytes), file holds 99984" \
    "a truncated image file: message"
is "$RC" 1 "a truncated image file: exit code 1"

# The gzip stream itself cut short.
broken
head -c 5000 "$ROOT/data/mnist/train-images-idx3-ubyte.gz" >"$TMP/work/data/mnist/train-images-idx3-ubyte.gz"
in_work check "$SPEC"
is "$ERR1" "$SPEC:5:30: cannot load the training data: data/mnist/train-images-idx3-ubyte.gz: truncated: header promises 9000 images of 28x28 (7056000 bytes), file holds 24511" \
    "a cut gzip stream: message"
is "$RC" 1 "a cut gzip stream: exit code 1"

# Fewer labels than images.
broken
gzip -dc "$ROOT/data/mnist/train-labels-idx1-ubyte.gz" | head -c 1000 | gzip -n \
    >"$TMP/work/data/mnist/train-labels-idx1-ubyte.gz"
in_work check "$SPEC"
is "$ERR1" "$SPEC:5:30: cannot load the training data: data/mnist/train-labels-idx1-ubyte.gz: truncated: header promises 9000 labels (9000 bytes), file holds 992" \
    "a truncated label file: message"
is "$RC" 1 "a truncated label file: exit code 1"

# No labels at all.
broken
rm "$TMP/work/data/mnist/train-labels-idx1-ubyte.gz"
in_work check "$SPEC"
is "$ERR1" "$SPEC:5:30: cannot load the training data: data/mnist: no train labels: looked for train-labels-idx1-ubyte and train-labels-idx1-ubyte.gz" \
    "missing labels: message"
is "$RC" 1 "missing labels: exit code 1"

# Not a gzip file, not an IDX file.
broken
echo "not an idx file" >"$TMP/work/data/mnist/train-images-idx3-ubyte.gz"
in_work check "$SPEC"
is "$ERR1" "$SPEC:5:30: cannot load the training data: data/mnist/train-images-idx3-ubyte.gz: not an IDX file: starts with 6e 6f 74 20, expected 00 00 08 and a dimension count" \
    "a file of junk: message"
is "$RC" 1 "a file of junk: exit code 1"

# The test split is optional, but a broken one is an error, not a quiet lack of test loss.
broken
rm "$TMP"/work/data/mnist/t10k-*
in_work check "$SPEC"
is "$RC" 0 "no test split: check exits 0"
broken
gzip -dc "$ROOT/data/mnist/t10k-images-idx3-ubyte.gz" | head -c 50000 | gzip -n \
    >"$TMP/work/data/mnist/t10k-images-idx3-ubyte.gz"
in_work check "$SPEC"
is "$ERR1" "$SPEC:5:30: cannot load the test data: data/mnist/t10k-images-idx3-ubyte.gz: truncated: header promises 1000 images of 28x28 (784000 bytes), file holds 49984" \
    "a truncated test image file: message"
is "$RC" 1 "a truncated test image file: exit code 1"

# The intact copy works: the failures above came from the damage.
broken
in_work check "$SPEC"
is "$RC" 0 "the intact copy checks"

done_testing
