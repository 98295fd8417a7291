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

# A hook's aigc.sample whose file cannot be written ends the run as a hook error does:
# the message names the hook, and the run so far is saved. Without --unsafe-hooks, a
# path through a symlink out of the run directory is refused, and a zero byte in a path
# is refused rather than cutting it.
SAMPLE='sample={image: "G(rand(16, 8))", grid: 4x4}'
hook_sample() { # NAME PATH: a hook script that asks for a grid at PATH after the epoch
    printf 'function on_epoch_end(run) aigc.sample{path = "%s"} end\n' "$2" >"$TMP/$1.lua"
}
OUTD=$TMP/out
mkdir -p "$OUTD/taken.png" "$TMP/outside"
ln -s "$TMP/outside" "$OUTD/link"
hook_sample nodir nodir/x.png
hook_sample taken taken.png
hook_sample link link/x.png
hook_sample nul 'x.png\0/../../y.png'
for case in "nodir|hook 'on_epoch_end' failed: aigc.sample: $OUTD/nodir/x.png: cannot write: No such file or directory" \
    "taken|hook 'on_epoch_end' failed: aigc.sample: $OUTD/taken.png: cannot write: Is a directory" \
    "link|hook 'on_epoch_end' failed: $TMP/link.lua:1: bad argument #1 to 'sample' (path 'link/x.png' leaves the run directory through a symlink (allowed with --unsafe-hooks))" \
    "nul|hook 'on_epoch_end' failed: $TMP/nul.lua:1: bad argument #1 to 'sample' (path has a zero byte)"; do
    name=${case%%|*}
    rm -f "$OUTD"/last.*
    expect_quick 1 "${case#*|}" tests/bad/spec.yaml --set hooks="$TMP/$name.lua" --set "$SAMPLE" --out "$OUTD"
    grep -qx "(the run so far is saved in $OUTD/last)" "$ERR" && [ -s "$OUTD/last.safetensors" ]
    ok $? "$name: the run so far is saved, and the message says where"
done
[ -z "$(ls -A "$TMP/outside")" ]
ok $? "nothing was written through the symlink"

# An --out too long for a path: refused before any directory is made, with its reason
# at the end of the message even when the path alone is longer than a message holds.
mkdir "$TMP/long"
LONG=$(awk 'BEGIN { for (i = 0; i < 50; i++) printf "%s%s", (i ? "/" : ""), sprintf("%099d", i) }')
NAME69=$(awk 'BEGIN { printf "%099d", 69 }')
HUGE=$(awk 'BEGIN { for (i = 0; i < 70; i++) printf "%s%s", (i ? "/" : ""), sprintf("%099d", i) }')
(cd "$TMP/long" && timeout 60 "$AIGC_RUN" "$ROOT/tests/bad/spec.yaml" --set data.path="$ROOT/data/mnist" \
    --set hooks="$ROOT/tests/bad/hooks/none.lua" --out "$LONG" >"$OUT" 2>"$ERR")
is "$?" 1 "a 4,999-byte --out: exit 1"
is "$(cat "$ERR")" "--out $LONG: a path of 4999 bytes; a run directory's may have at most 3840" \
    "  with the path and the reason"
(cd "$TMP/long" && timeout 60 "$AIGC_RUN" "$ROOT/tests/bad/spec.yaml" --set data.path="$ROOT/data/mnist" \
    --set hooks="$ROOT/tests/bad/hooks/none.lua" --out "$HUGE" >"$OUT" 2>"$ERR")
like "$(cat "$ERR")" "--out 0[0/]* ... [0-9/]*/${NAME69}: a path of 6999 bytes; a run directory's may have at most 3840" \
    "a 6,999-byte --out: the message loses the middle of the path, not its reason"
NAME=$(awk 'BEGIN { printf "%0300d", 0 }')
(cd "$TMP/long" && timeout 60 "$AIGC_RUN" "$ROOT/tests/bad/spec.yaml" --set data.path="$ROOT/data/mnist" \
    --set hooks="$ROOT/tests/bad/hooks/none.lua" --out "a/b/$NAME/c" >"$OUT" 2>"$ERR")
is "$(cat "$ERR")" "a/b/$NAME/c: cannot create the run directory: a/b/$NAME: File name too long" \
    "a name of 300 bytes in --out"
[ -z "$(ls -A "$TMP/long")" ]
ok $? "  none of them left a directory behind"

# --resume while another run trains in the directory (here: holds its lock) says so,
# and reads no checkpoint, which may be half renamed (last.safetensors is held aside).
RD=$TMP/rd
H="--set hooks=tests/bad/hooks/none.lua"
# shellcheck disable=SC2086 # H is two words
timeout 60 "$AIGC_RUN" tests/bad/spec.yaml $H --out "$RD" >/dev/null 2>&1
ok $? "a run to resume"
mv "$RD/last.safetensors" "$RD/held"
flock "$RD" sleep 3 &
LOCKER=$!
sleep 0.5
# shellcheck disable=SC2086
expect_quick 1 "$RD: another aigc-run is training in this directory; wait for it to end, or give --out another one" \
    tests/bad/spec.yaml $H --resume --out "$RD" --epochs 2
wait "$LOCKER"
mv "$RD/held" "$RD/last.safetensors"

# A save killed half way leaves its temporary files: the next run there deletes them,
# and only them.
touch "$RD/last.safetensors.tmp" "$RD/last.state.tmp" "$RD/step-00000070.safetensors.tmp" \
    "$RD/step-00000070.state.tmp" "$RD/notes.tmp" "$RD/last.tmp" "$RD/step-x.state.tmp"
# shellcheck disable=SC2086
timeout 60 "$AIGC_RUN" tests/bad/spec.yaml $H --resume --out "$RD" --epochs 2 >/dev/null 2>&1
ok $? "the run resumes"
is "$(cd "$RD" && ls -- *.tmp | tr '\n' ' ')" "last.tmp notes.tmp step-x.state.tmp " \
    "  the checkpoints' temporary files are gone, the other files stay"

done_testing
