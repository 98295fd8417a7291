#!/bin/sh
# Hostile input outside the spec's text: files that are not files, paths too long, a
# hook's writes that fail or leave the run directory. Each ends at once, with a
# message that names the place, and loses nothing. aigc-run runs under timeout here:
# a case that blocks fails instead of hanging the suite.
. "$(dirname "$0")/lib.sh"

# Like expect_error, with a time limit: 124 for the exit code when it is reached.
expect_quick() {
    want_rc=$1 want_line=$2
    shift 2
    timeout 60 "$AIGC_RUN" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    ERR1=$(grep -av '^epoch [0-9]*/[0-9]* [0-9]*/[0-9]* ' "$ERR" | sed -n 1p)
    is "$ERR1" "$want_line" "aigc-run $*: message"
    is "$RC" "$want_rc" "aigc-run $*: exit code $want_rc"
}

# A FIFO (with no writer: open() would block) as the spec, a hook script, an IDX file.
mkfifo "$TMP/spec.yaml" "$TMP/hook.lua"
expect_quick 1 "$TMP/spec.yaml: cannot open: not a regular file (a FIFO)" check "$TMP/spec.yaml"
expect_quick 1 "--set hooks=$TMP/hook.lua: $TMP/hook.lua: cannot open the hook script: not a regular file (a FIFO)" \
    check tests/bad/spec.yaml --set hooks="$TMP/hook.lua"
mkdir "$TMP/data"
cp data/mnist/t10k-*.gz data/mnist/train-images-idx3-ubyte.gz "$TMP/data/"
mkfifo "$TMP/data/train-labels-idx1-ubyte.gz"
expect_quick 1 "--set data.path=$TMP/data: cannot load the training data: $TMP/data/train-labels-idx1-ubyte.gz: not a regular file (a FIFO)" \
    check tests/bad/spec.yaml --set data.path="$TMP/data"
expect_quick 1 "$TMP/data: cannot open: not a regular file (a directory)" check "$TMP/data"

done_testing
