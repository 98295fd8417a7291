#!/bin/sh
# Faults during training: a signal saves a checkpoint and stops with a message, and the
# run resumed from it ends where an uninterrupted one does; a loss that turns NaN stops
# the run at the statement that made the first non-finite value, or with on_nan: skip,
# skips the batch (no update from it) until too many in a row.
. "$(dirname "$0")/lib.sh"

S=tests/specs
strip() { sed 's/"seconds":[0-9.]*,//' "$1"; }

# SIGINT mid-run: wait for the first checkpoint (every 20 steps), then interrupt.
"$AIGC_RUN" specs/vae.yaml --epochs 2 --set train.log_every=10 --set train.checkpoint.every=20 \
    --out "$TMP/int" --progress lines >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
i=0
while [ "$i" -lt 300 ] && [ ! -s "$TMP/int/last.state" ]; do
    sleep 0.1
    i=$((i + 1))
done
kill -INT "$pid"
wait "$pid"
rc=$?
is "$rc" 1 "SIGINT: exit code 1"
like "$(tail -n 1 "$TMP/int.err")" "interrupted by SIGINT at epoch *, step *: saved $TMP/int/last; continue with --resume" \
    "SIGINT: the message names the step and the checkpoint"
[ -s "$TMP/int/last.safetensors" ] && [ -s "$TMP/int/last.state" ]
ok $? "SIGINT: a checkpoint was saved"

run specs/vae.yaml --epochs 2 --set train.log_every=10 --set train.checkpoint.every=20 --out "$TMP/int" \
    --progress lines --resume
is "$RC" 0 "the interrupted run resumes"
run specs/vae.yaml --epochs 2 --set train.log_every=10 --set train.checkpoint.every=20 --out "$TMP/whole" \
    --progress lines
is "$RC" 0 "the uninterrupted run"
strip "$TMP/int/metrics.jsonl" >"$TMP/a"
strip "$TMP/whole/metrics.jsonl" >"$TMP/b"
cmp -s "$TMP/a" "$TMP/b"
ok $? "resumed after SIGINT: the same metrics as the uninterrupted run"
cmp -s "$TMP/int/last.safetensors" "$TMP/whole/last.safetensors"
ok $? "resumed after SIGINT: the same final weights"

# SIGTERM is handled the same way.
"$AIGC_RUN" specs/vae.yaml --epochs 2 --out "$TMP/term" --progress lines >/dev/null 2>"$TMP/term.err" &
pid=$!
i=0
while [ "$i" -lt 300 ] && ! grep -q 'samples/s' "$TMP/term.err" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
kill -TERM "$pid"
wait "$pid"
is "$?" 1 "SIGTERM: exit code 1"
like "$(tail -n 1 "$TMP/term.err")" "interrupted by SIGTERM at epoch *" "SIGTERM: the message"

# NaN: the statement that made the first non-finite value, with its place.
expect_error 1 "$S/diverges.yaml:11:7: training diverged at epoch 1, step 1: 'loss' is NaN; the first non-finite value comes from log in this statement" \
    $S/diverges.yaml --out "$TMP/nan" --progress lines
# After finite steps the updates are the cause: the learning rates are named.
run $S/blowup.yaml --out "$TMP/blowup" --progress lines
is "$(grep -v '^epoch [0-9]*/[0-9]* [0-9]*/[0-9]* ' "$ERR" | sed -n 1p)" "$S/blowup.yaml:10:7: training diverged at epoch 1, step 6: 'loss' is +infinity after 5 finite steps (lower the learning rate: opt lr 100); the first non-finite value comes from mse in this statement" \
    "a loss that turns infinite after finite steps: the message names the learning rate"
is "$RC" 1 "... exit 1"

# Sizes past the memory limit are refused with the computed size, before allocating.
expect_error 1 "$S/huge.yaml:5:3: the models have 12560000000 parameters: with their gradients and optimizer state 239562 MB, more than the memory limit of 100 MB (--max-memory)" \
    check $S/huge.yaml --max-memory 100
expect_error 1 "specs/dcgan.yaml:6:3: the training step: the graph needs 61 MB at batch 64, more than the 32 MB left under the memory limit (--max-memory)" \
    check specs/dcgan.yaml --max-memory 50
run check specs/vae.yaml --max-memory 40
is "$RC" 0 "the VAE fits in 40 MB"
expect_error 2 "aigc-run: --max-memory expects a whole number in [1, 1073741824], got '0'" \
    check specs/vae.yaml --max-memory 0

# on_nan: skip. A batch whose loss is -infinity (log of a label 0) makes no update: the
# run goes on, counts the batches it skipped, and its weights stay finite.
NS=$S/nan-some-batches.yaml
run $NS --out "$TMP/skip" --progress lines --set train.checkpoint.every=1000 --set train.checkpoint.keep=3
is "$RC" 0 "on_nan: skip: the run ends (exit 0)"
skipped=$(json_field "$TMP/skip/metrics.jsonl" epoch 1 skipped)
is "$skipped" 777 "the epoch row counts the skipped batches"
like "$(cat "$OUT")" "epoch 1/1  fit * loss *  test_fit *  test_loss -inf  skipped 777" "the epoch line counts them too"
last=$(grep '^epoch 1/1 9000/9000 ' "$ERR")
like "$last" "* fit * loss * skipped 777" "the last progress line counts them"
case $last in *inf* | *nan*) false ;; esac
ok $? "and shows the last batch that was not skipped, finite: $last"
is_number "$(json_field "$TMP/skip/metrics.jsonl" epoch 1 train_loss)"
ok $? "the epoch's mean loss leaves the skipped batches out: finite"
grep -q '"step":300,[^}]*"fit":null,"loss":null,"skipped":111}' "$TMP/skip/metrics.jsonl"
ok $? "a skipped batch's step row holds null values and the count so far"
run eval $NS --checkpoint "$TMP/skip"
is_number "$(sed -n 's/^test_fit //p' "$OUT")"
ok $? "the weights are finite (a finite test_fit from the checkpoint)"
# Exact resume keeps the counts: from the step-2000 checkpoint to the end, the same
# epoch row and the same weights.
mkdir "$TMP/skip2" && cp "$TMP/skip/step-00002000."* "$TMP/skip/metrics.jsonl" "$TMP/skip2/"
run $NS --out "$TMP/skip2" --progress lines --resume "$TMP/skip2/step-00002000"
is "$RC" 0 "resumed from step 2000"
is "$(json_field "$TMP/skip2/metrics.jsonl" epoch 1 skipped),$(json_field "$TMP/skip2/metrics.jsonl" epoch 1 train_loss)" \
    "$skipped,$(json_field "$TMP/skip/metrics.jsonl" epoch 1 train_loss)" "... the same count and mean loss"
cmp -s "$TMP/skip2/last.safetensors" "$TMP/skip/last.safetensors"
ok $? "... and the same weights"

# Too many in a row stop the run, at the statement that made the first non-finite value
# (a loss), or at the update (a gradient).
diverged_line() { grep -v '^epoch [0-9]*/[0-9]* [0-9]*/[0-9]* ' "$ERR" | sed -n 1p; }
run $NS --out "$TMP/skip3" --progress lines --set train.max_skipped=2
is "$(diverged_line)" "$NS:18:7: training diverged at epoch 1, step 9: 3 batches in a row skipped (max_skipped 2); the loss of 'update opt' is -infinity; the first non-finite value comes from log in this statement" \
    "more than max_skipped in a row: the message"
is "$RC" 1 "more than max_skipped in a row: exit 1"
run $S/nan-gradient.yaml --out "$TMP/skip4" --progress lines
is "$(diverged_line)" "$S/nan-gradient.yaml:15:7: training diverged at epoch 1, step 4: 4 batches in a row skipped (max_skipped 3); a gradient of 'update opt' is not finite" \
    "a finite loss with a non-finite gradient is skipped too: the message"
is "$RC" 1 "... exit 1"
expect_error 1 "$S/overflow.yaml:15:7: training diverged at epoch 1, step 1: 'update opt' made a weight non-finite from a finite loss and gradients; lower the learning rate" \
    $S/overflow.yaml --out "$TMP/skip5" --progress lines

# A run directory that cannot be made: reported before any training (the full disk and
# read-only cases are in disk.t), with the file in its way.
: >"$TMP/file"
expect_error 1 "$TMP/file/run: cannot create the run directory: $TMP/file: Not a directory" \
    tests/specs/tiny-ae.yaml --out "$TMP/file/run" --progress lines
expect_error 1 "$TMP/file: cannot create the run directory: Not a directory" \
    tests/specs/tiny-ae.yaml --out "$TMP/file" --progress lines

# A run directory that another aigc-run trains in (its lock, flock on the directory,
# held here by flock(1)): refused before anything is written there; free again once
# the other ends.
# Both waits are bounded (30 s, 10 s): a lost holder or a missing flock(1) fails the
# checks below instead of hanging the suite.
mkdir "$TMP/busy"
flock "$TMP/busy" -c "touch '$TMP/held'; i=0
    while [ ! -e '$TMP/release' ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done" &
holder=$!
i=0
while [ ! -e "$TMP/held" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_error 1 "$TMP/busy: another aigc-run is training in this directory; wait for it to end, or give --out another one" \
    tests/specs/tiny-ae.yaml --out "$TMP/busy" --progress lines
[ -z "$(ls -A "$TMP/busy")" ]
ok $? "... and nothing is written there"
touch "$TMP/release"
wait "$holder"
run tests/specs/tiny-ae.yaml --out "$TMP/busy" --progress lines
is "$RC" 0 "once the other run ends, a run there trains"

done_testing
