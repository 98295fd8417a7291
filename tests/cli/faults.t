#!/bin/sh
# Faults during training: a signal saves a checkpoint and stops with a message, and the
# run resumed from it ends where an uninterrupted one does; a loss that turns NaN stops
# the run at the statement that made the first non-finite value.
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

# Sizes past the memory limit are refused with the computed size, before allocating.
expect_error 1 "$S/huge.yaml:5:3: the models have 12560000000 parameters: with their gradients and optimizer state 239562 MB, more than the memory limit of 100 MB (--max-memory)" \
    check $S/huge.yaml --max-memory 100
expect_error 1 "specs/dcgan.yaml:6:3: the training step: the graph needs 137 MB at batch 64, more than the 32 MB left under the memory limit (--max-memory)" \
    check specs/dcgan.yaml --max-memory 50
run check specs/vae.yaml --max-memory 40
is "$RC" 0 "the VAE fits in 40 MB"
expect_error 2 "aigc-run: --max-memory expects a whole number in [1, 1073741824], got '0'" \
    check specs/vae.yaml --max-memory 0

done_testing
