#!/bin/sh
# A model's `ema:` (docs/spec.md): the averages are saved beside the weights as
# ema.MODEL.* tensors, a run resumed mid-epoch ends with the same weights and averages,
# byte for byte, as one that ran through, and sampling and evaluation use them.
. "$(dirname "$0")/lib.sh"

# The tensor names of a safetensors file, from its JSON header.
names() {
    head -c 4096 "$1" | tr -d '\000' | grep -ao '"[A-Za-z_.0-9]*":{"dtype"' | cut -d'"' -f2 | sort | tr '\n' ' '
}

AE="tests/specs/tiny-ae.yaml --progress lines --set train.log_every=10
--set train.checkpoint.every=50 --set train.checkpoint.keep=3 --set models.G.ema=0.99 --set models.G.ema_warmup=true"
# shellcheck disable=SC2086 # $AE is a list of arguments
run $AE --epochs 2 --out "$TMP/through"
is "$RC" 0 "two epochs with an average of G exit 0"
is "$(names "$TMP/through/last.safetensors")" \
    "E.0.bias E.0.weight G.0.bias G.0.weight ema.G.0.bias ema.G.0.weight " \
    "the checkpoint holds G's averages as ema.G.0.weight and ema.G.0.bias"

# One epoch (checkpoints at steps 50, 100, 141), then resumed from step 100 to two.
# shellcheck disable=SC2086
run $AE --epochs 1 --out "$TMP/part"
is "$RC" 0 "one epoch exits 0"
# shellcheck disable=SC2086
run $AE --epochs 2 --out "$TMP/part" --resume "$TMP/part/step-00000100"
exits_0 "resumed from step 100 to two epochs exits 0"
cmp -s "$TMP/part/last.safetensors" "$TMP/through/last.safetensors"
ok $? "resumed mid-epoch: weights and averages are the uninterrupted run's, byte for byte"

# Without ema: no averages, and the same weights as before this feature.
run tests/specs/tiny-ae.yaml --progress lines --epochs 1 --out "$TMP/plain"
is "$(names "$TMP/plain/last.safetensors")" "E.0.bias E.0.weight G.0.bias G.0.weight " \
    "a spec without ema saves no averages"

# Sampling and evaluation use the averages: with a decay of 1 the average stays the
# initial G, so its samples and test loss are the untrained model's, not the trained.
# shellcheck disable=SC2086
run $AE --set models.G.ema=1 --set models.G.ema_warmup=false --epochs 1 --out "$TMP/frozen"
is "$RC" 0 "a run with decay 1 exits 0"
run eval tests/specs/tiny-ae.yaml --set models.G.ema=1 --checkpoint "$TMP/frozen"
frozen=$(sed -n 's/^test_loss //p' "$OUT")
run eval tests/specs/tiny-ae.yaml --set models.G.ema=0.99 --checkpoint "$TMP/through"
trained=$(sed -n 's/^test_loss //p' "$OUT")
is_number "$frozen" && is_number "$trained" && less 0.5 "$frozen" && less "$trained" 0.3
ok $? "eval uses the averages: G frozen at its start tests at $frozen, averaged after training at $trained"
expect_error 1 "$TMP/plain/last.safetensors: checkpoint lacks ema.G.0.weight" \
    eval tests/specs/tiny-ae.yaml --set models.G.ema=0.99 --checkpoint "$TMP/plain"

# --init from weights trained without ema: the averages start as the weights. With lr 0
# and decay 1 nothing moves, so the averaged G evaluates exactly as the plain one.
# shellcheck disable=SC2086
run $AE --set models.G.ema=1 --set models.G.ema_warmup=false --set train.optimizers.opt.lr=0 \
    --epochs 1 --init "$TMP/plain" --out "$TMP/seeded"
is "$RC" 0 "--init from a checkpoint without averages exits 0"
run eval tests/specs/tiny-ae.yaml --set models.G.ema=1 --checkpoint "$TMP/seeded"
seeded=$(sed -n 's/^test_loss //p' "$OUT")
run eval tests/specs/tiny-ae.yaml --checkpoint "$TMP/plain"
plain=$(sed -n 's/^test_loss //p' "$OUT")
is_number "$seeded" && [ "$seeded" = "$plain" ]
ok $? "the averages started as the weights: test loss $seeded, the plain checkpoint's $plain"

done_testing
