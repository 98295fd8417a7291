#!/bin/sh
# specs/wgan.yaml, trained for short real runs: RMSprop, the critic's weights clipped,
# G updated every 5 steps; and tests/specs/wgan-split.yaml, its five critic updates in
# one step on parts of a batch of 320, with data.drop_last.
. "$(dirname "$0")/lib.sh"

# max_abs FILE TENSOR: the largest |value| of a float32 tensor in a safetensors file.
max_abs() {
    tensor_values "$1" "$2" | awk '{ v = $1 < 0 ? -$1 : $1; if (v > m) m = v } END { if (NR) printf "%.9g\n", m }'
}

# w) WGAN: check shows the update's period
run check specs/wgan.yaml
is "$RC" 0 "check specs/wgan.yaml exits 0"
grep -q '^  forward [0-9]* nodes, then update opt_G every 5 steps: ' "$OUT"
ok $? "check shows opt_G's update every 5 steps"

# w) two epochs of 141 steps, a row per step
W="specs/wgan.yaml --progress lines --set train.log_every=1"
run $W --epochs 2 --out "$TMP/wgan"
exits_0 "wgan: two epochs exit 0"
M=$TMP/wgan/metrics.jsonl
for e in 1 2; do
    finite "$M" $e "wgan epoch $e: " train_loss_D train_loss_G test_loss_D test_loss_G
    # loss_D = mean D(fake) - mean D(x): the critic learns to score real images above
    # generated ones, so its estimate of the distance, -loss_D, is positive.
    less "$(json_field "$M" epoch $e train_loss_D)" 0
    ok $? "wgan epoch $e: the critic scores real above fake (train_loss_D < 0)"
    less "$(json_field "$M" epoch $e test_loss_D)" 0
    ok $? "wgan epoch $e: on the test split too (test_loss_D < 0)"
done
# G is updated on steps 1, 6, 11, ..., 281: 57 of 282; loss_G is null in the others.
is "$(grep -c '"kind":"step".*"loss_G":-\{0,1\}[0-9]' "$M")" 57 "loss_G is computed on the 57 steps that update G"
is "$(grep '"kind":"step"' "$M" | grep -c '"loss_G":null')" 225 "and null in the step rows of the other 225"
is "$(grep '"kind":"step","epoch":1,"step":6,' "$M" | grep -c '"loss_G":null')" 0 "step 6 updates G"
is "$(grep '"kind":"step","epoch":2,"step":142,' "$M" | grep -c '"loss_G":null')" 1 \
    "step 142 does not: the count goes on across epochs"
d=$(max_abs "$TMP/wgan/last.safetensors" D.0.weight)
is_number "$d" && less "$d" 0.0100001
ok $? "the critic's weights stay in [-0.01, 0.01] (largest |w| $d)"
g=$(max_abs "$TMP/wgan/last.safetensors" G.0.weight)
less 0.0100001 "$g"
ok $? "the generator's are not clipped (largest |w| $g)"
is "$(od -An -tx1 -N8 "$TMP/wgan/samples-epoch-002.png" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//')" \
    "89 50 4e 47 0d 0a 1a 0a" "wgan: samples-epoch-002.png is a PNG"

# w) one epoch, then --resume for the second: 141 steps is no multiple of 5, so G's
# updates would shift if the count restarted; the run ends bit for bit the same.
run $W --epochs 1 --out "$TMP/wgan-resumed"
run $W --epochs 2 --out "$TMP/wgan-resumed" --resume
is "$RC" 0 "wgan: --resume for the second epoch exits 0"
cmp -s "$TMP/wgan/last.safetensors" "$TMP/wgan-resumed/last.safetensors"
ok $? "resumed after epoch 1, the weights are the uninterrupted run's"
strip() { sed 's/"seconds":[0-9.]*,//' "$1"; }
strip "$M" >"$TMP/a.jsonl"
strip "$TMP/wgan-resumed/metrics.jsonl" >"$TMP/b.jsonl"
cmp -s "$TMP/a.jsonl" "$TMP/b.jsonl"
ok $? "and so are the metrics, step rows and epoch means"

# w) stopped by a hook at step 30, mid-epoch, and resumed: the epoch's means of loss_G
# (over the steps that computed it) come out the same.
run $W --epochs 1 --out "$TMP/wgan-mid" --set hooks=tests/hooks/stop_step.lua
run $W --epochs 2 --out "$TMP/wgan-mid" --resume --set hooks=tests/hooks/none.lua
is "$RC" 0 "wgan: --resume from step 30 exits 0"
strip "$TMP/wgan-mid/metrics.jsonl" >"$TMP/c.jsonl"
cmp -s "$TMP/a.jsonl" "$TMP/c.jsonl"
ok $? "resumed from step 30, the metrics are the uninterrupted run's"

# x) the batch cut in five: 28 full batches of 320 an epoch, the 40 images left over
# dropped, in training and in the test means (1,000 = 3 x 320 + 40)
run tests/specs/wgan-split.yaml --progress lines --set train.log_every=1 --out "$TMP/split"
exits_0 "wgan-split: one epoch exits 0"
M=$TMP/split/metrics.jsonl
is "$(grep -c '"kind":"step"' "$M")" 28 "28 steps: the epoch's short last batch is dropped"
is "$(json_field "$M" epoch 1 step)" 28 "the epoch ends at step 28"
finite "$M" 1 "wgan-split: " train_loss_D train_loss_G test_loss_D test_loss_G
less "$(json_field "$M" epoch 1 train_loss_D)" 0
ok $? "wgan-split: the critic learns from the parts (train_loss_D < 0)"
d=$(max_abs "$TMP/split/last.safetensors" D.0.weight)
is_number "$d" && less "$d" 0.0100001
ok $? "wgan-split: five clipped updates a step keep the critic in [-0.01, 0.01] ($d)"

# x) a batch too large for drop_last to leave any
expect_error 1 "--set data.batch=10000: the training split has 9000 items, fewer than a batch of 10000: data.drop_last would leave none; lower data.batch" \
    tests/specs/wgan-split.yaml --set data.batch=10000 --out "$TMP/split-big"
[ ! -e "$TMP/split-big" ]
ok $? "and it leaves no run directory"

done_testing
