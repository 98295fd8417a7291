#!/bin/sh
# Checkpoints and --resume: a run killed mid-epoch, or ended early, and resumed gives the
# same metrics and weights as one that ran through; --resume takes a run directory or a
# checkpoint's path; a checkpoint that does not fit the spec is refused and left as it
# was; train.checkpoint.keep keeps the newest numbered checkpoints.
. "$(dirname "$0")/lib.sh"

strip_seconds() {
    sed 's/"seconds":[^,}]*,\{0,1\}//' "$1"
}
# The step a state file was saved at: an i64 at byte 40 (docs in include/aigc/ckpt.h:
# the 20-byte header, then the record "step" first: u32 4, "step", u32 type, u64 count).
state_step() {
    od -An -td8 -j40 -N8 "$1" 2>/dev/null | tr -d ' '
}
# same_run DIR BASE WHAT: DIR's metrics (but for the seconds) and last weights are BASE's.
same_run() {
    strip_seconds "$1/metrics.jsonl" >"$TMP/m.got"
    strip_seconds "$2/metrics.jsonl" >"$TMP/m.want"
    cmp -s "$TMP/m.got" "$TMP/m.want"
    ok $? "$3: the metrics are the uninterrupted run's, but for the seconds"
    if ! cmp -s "$TMP/m.got" "$TMP/m.want"; then diag "$(diff "$TMP/m.want" "$TMP/m.got" | head -10)"; fi
    cmp -s "$1/last.safetensors" "$2/last.safetensors"
    ok $? "$3: last.safetensors is the uninterrupted run's, byte for byte"
}

# a) specs/gan.yaml, 2 epochs of 141 steps, a checkpoint every 100 steps
GAN="specs/gan.yaml --progress lines --set train.log_every=10 --set train.checkpoint.every=100"
# shellcheck disable=SC2086 # $GAN is a list of arguments
run $GAN --epochs 2 --out "$TMP/gan"
is "$RC" 0 "the uninterrupted GAN run exits 0"
cp "$OUT" "$TMP/gan.stdout"
[ "$(grep -c '"kind":"epoch"' "$TMP/gan/metrics.jsonl")" -eq 2 ] &&
    [ "$(grep -c '"kind":"step"' "$TMP/gan/metrics.jsonl")" -eq 28 ]
ok $? "the uninterrupted run logs 28 step rows and 2 epoch rows"

# Killed with SIGKILL once the step-200 checkpoint is in place, in the second epoch.
# shellcheck disable=SC2086
"$AIGC_RUN" $GAN --epochs 2 --out "$TMP/killed" >"$TMP/killed.out" 2>"$TMP/killed.err" &
pid=$!
i=0
while [ $i -lt 1000 ]; do
    s=$(state_step "$TMP/killed/last.state")
    [ -n "$s" ] && [ "$s" -ge 200 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
    i=$((i + 1))
done
kill -KILL "$pid" 2>/dev/null
killed=$?
wait "$pid" 2>/dev/null
wrc=$?
[ "$killed" -eq 0 ] && [ "$wrc" -eq 137 ]
ok $? "the run is killed with SIGKILL while it runs (status $wrc)"
is "$(state_step "$TMP/killed/last.state")" 200 "the killed run's last checkpoint is from step 200"
! grep -q '"kind":"epoch","epoch":2' "$TMP/killed/metrics.jsonl"
ok $? "the killed run did not finish its second epoch"
# shellcheck disable=SC2086
run $GAN --epochs 2 --out "$TMP/killed" --resume
exits_0 "--resume of the killed run exits 0"
is "$(cat "$OUT")" "$(sed -n 2p "$TMP/gan.stdout")" "the resumed run prints the second epoch's summary line"
same_run "$TMP/killed" "$TMP/gan" "killed at step 200 and resumed"
like "$(grep '^epoch 2/2 ' "$ERR" | tail -n 1)" "epoch 2/2 9000/9000 * samples/s *" \
    "the resumed run's progress counts the epoch's samples from its start, not from the resume"
cmp -s "$TMP/killed/samples-epoch-002.png" "$TMP/gan/samples-epoch-002.png"
ok $? "killed and resumed: the second epoch's sample grid is the uninterrupted run's"

# One epoch, then --resume with --epochs 2: train.epochs may change on resume.
# shellcheck disable=SC2086
run $GAN --epochs 1 --out "$TMP/gan1"
is "$RC" 0 "a one-epoch GAN run exits 0"
# shellcheck disable=SC2086
run $GAN --epochs 2 --out "$TMP/gan1" --resume
is "$RC" 0 "--resume with --epochs 2 exits 0"
same_run "$TMP/gan1" "$TMP/gan" "one epoch, then resumed to two"

# b) tests/specs/tiny-ae.yaml (141 steps an epoch): a checkpoint every 50 steps, the
# newest 2 numbered ones kept
AE="tests/specs/tiny-ae.yaml --progress lines --set train.log_every=10
--set train.checkpoint.every=50 --set train.checkpoint.keep=2"
# shellcheck disable=SC2086 # $AE is a list of arguments
run $AE --epochs 2 --out "$TMP/ae"
is "$RC" 0 "the uninterrupted two-epoch run exits 0"
# shellcheck disable=SC2086
run $AE --epochs 1 --out "$TMP/ae1"
is "$RC" 0 "a one-epoch run exits 0"

# e) keep 2: of the checkpoints at steps 50, 100 and 141 (the epoch's end), the last two
is "$(cd "$TMP/ae1" && echo step-* last.*)" \
    "step-00000100.safetensors step-00000100.state step-00000141.safetensors step-00000141.state last.safetensors last.state" \
    "train.checkpoint.keep=2 leaves two numbered checkpoints and last"

# --resume F, and an epoch count changed from 1 to 2
for from in last.safetensors last step-00000100.safetensors step-00000100.state; do
    rm -rf "$TMP/aeb"
    cp -R "$TMP/ae1" "$TMP/aeb"
    # shellcheck disable=SC2086
    run $AE --epochs 2 --out "$TMP/aeb" --resume "$TMP/aeb/$from"
    exits_0 "--resume DIR/$from exits 0"
    same_run "$TMP/aeb" "$TMP/ae" "--resume DIR/$from"
done

# --resume F with another --out: the run goes on there, F's run is left as it was
cp "$TMP/ae1/metrics.jsonl" "$TMP/ae1.metrics"
cp "$TMP/ae1/last.state" "$TMP/ae1.state"
mkdir "$TMP/aeother"
cp "$TMP/gan/metrics.jsonl" "$TMP/aeother/metrics.jsonl"
for out in aenew aeother; do
    # shellcheck disable=SC2086
    run $AE --epochs 2 --out "$TMP/$out" --resume "$TMP/ae1/last"
    exits_0 "--resume DIR/last --out $out exits 0"
    same_run "$TMP/$out" "$TMP/ae" "--resume DIR/last --out $out"
done
cmp -s "$TMP/ae1/metrics.jsonl" "$TMP/ae1.metrics" && cmp -s "$TMP/ae1/last.state" "$TMP/ae1.state"
ok $? "--resume DIR/last --out elsewhere leaves DIR as it was"

# c) a checkpoint that does not fit the spec is refused, and nothing is changed
rm -rf "$TMP/aec"
cp -R "$TMP/ae1" "$TMP/aec"
expect_error 1 "$TMP/aec/last.safetensors: checkpoint has E.0.weight [32, 784] but the spec makes [48, 784] (a checkpoint of spec 'tiny-ae', not of 'tiny-ae-wide')" \
    tests/specs/tiny-ae-wide.yaml --out "$TMP/aec" --resume
expect_error 1 "$TMP/aec/last.state: optimizer 'opt' was adam in the checkpoint, the spec says sgd" \
    tests/specs/tiny-ae.yaml --set train.optimizers.opt.type=sgd --out "$TMP/aec" --resume
cmp -s "$TMP/aec/metrics.jsonl" "$TMP/ae1/metrics.jsonl" &&
    cmp -s "$TMP/aec/last.safetensors" "$TMP/ae1/last.safetensors" &&
    cmp -s "$TMP/aec/last.state" "$TMP/ae1/last.state"
ok $? "a refused resume leaves the metrics and the checkpoint as they were"
run tests/specs/tiny-ae.yaml --progress lines --epochs 2 --set train.optimizers.opt.lr=0 --out "$TMP/aec" --resume
is "$RC" 0 "a changed learning rate may resume"
[ -n "$(json_field "$TMP/aec/metrics.jsonl" epoch 2 test_loss)" ]
ok $? "... and the run goes on to its second epoch"
cmp -s "$TMP/aec/last.safetensors" "$TMP/ae1/last.safetensors"
ok $? "... with the new learning rate: at 0, the weights stay the checkpoint's"

# d) nothing to resume from
mkdir "$TMP/empty"
expect_error 1 "$TMP/empty/last.safetensors: cannot open: No such file or directory" \
    tests/specs/tiny-ae.yaml --out "$TMP/empty" --resume
expect_error 1 "$TMP/empty/step-00000050.safetensors: no run directory or checkpoint to resume from" \
    tests/specs/tiny-ae.yaml --out "$TMP/empty" --resume "$TMP/empty/step-00000050.safetensors"
[ -z "$(ls "$TMP/empty")" ]
ok $? "a failed --resume writes nothing into the run directory"
expect_error 1 "$TMP/nowhere/run: no run directory or checkpoint to resume from" \
    tests/specs/tiny-ae.yaml --out "$TMP/nowhere/run" --resume
[ ! -e "$TMP/nowhere" ]
ok $? "--resume into a directory that does not exist does not make it"
expect_error 1 "$TMP/nowhere/last: no run directory or checkpoint to resume from" \
    tests/specs/tiny-ae.yaml --resume "$TMP/nowhere/last" --out "$TMP/nowhere/run"
[ ! -e "$TMP/nowhere" ]
ok $? "... nor the --out directory of a resume that fails"

# A new run where one was: said, and done (the first run says nothing of the kind).
AE1="tests/specs/tiny-ae.yaml --progress lines --epochs 1"
# shellcheck disable=SC2086
run $AE1 --out "$TMP/again"
! grep -q "replacing" "$ERR"
ok $? "a run into a new directory says nothing about replacing"
# shellcheck disable=SC2086
run $AE1 --out "$TMP/again"
is "$RC,$ERR1" "0,$TMP/again: replacing the run there (--resume would continue it)" \
    "a run where one was: exit 0, and the first line says it replaces it"
[ "$(grep -c '"kind":"epoch"' "$TMP/again/metrics.jsonl")" -eq 1 ]
ok $? "... its metrics are its own (one epoch row)"

# f) a run that has done its epochs, or stopped past them, is not trained on: it says
# so, exits 0, and leaves the run as it was
cp "$TMP/ae/metrics.jsonl" "$TMP/ae.metrics"
# shellcheck disable=SC2086
run $AE --epochs 2 --out "$TMP/ae" --resume
is "$RC,$(cat "$ERR")" "0,$TMP/ae: nothing to train: the run has done its 2 epochs (--epochs 3 or more trains on)" \
    "--resume of a finished run: exit 0, and why it trains nothing"
# shellcheck disable=SC2086
run $AE --epochs 1 --out "$TMP/ae" --resume
is "$RC,$(cat "$ERR")" "0,$TMP/ae: nothing to train: the run has done 2 epochs, more than 1 (--epochs 3 or more trains on)" \
    "--resume with fewer epochs than the run has done"
cmp -s "$TMP/ae/metrics.jsonl" "$TMP/ae.metrics"
ok $? "... the metrics left as they were"
# shellcheck disable=SC2086
run $AE --epochs 1 --out "$TMP/aepast" --resume "$TMP/ae/step-00000250"
is "$RC,$(cat "$ERR")" "0,$TMP/ae: nothing to train: the run stopped in epoch 2, past 1 (--epochs 2 or more finishes it)" \
    "--resume of a checkpoint in epoch 2 with --epochs 1"
[ ! -e "$TMP/aepast" ]
ok $? "... makes no run directory"

done_testing
