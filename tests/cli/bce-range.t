#!/bin/sh
# bce targets are probabilities. The seed VAE fed it data scaled to [-1, 1], and its
# loss went negative: `check` refuses such a target where the range is known, and a
# run stops at the first batch where it is not.
. "$(dirname "$0")/lib.sh"

S=tests/specs

# i) the seed's bug, found by the range analysis, at the target of bce
expect_error 1 "$S/vae-bce-target-scaled.yaml:22:30: bce: the target takes values in [-1, 1], but bce targets must lie in [0, 1] (scale the data with pixels / 255, not to [-1, 1])" \
    check $S/vae-bce-target-scaled.yaml
is "$(sed -n 2p "$ERR")" "  22 |     - loss = bce(decoder(z), x, sum) + kl_normal(mu, logvar)" "the message quotes the step"
expect_error 1 "$S/vae-bce-target-scaled.yaml:22:30: bce: the target takes values in [-1, 1], but bce targets must lie in [0, 1] (scale the data with pixels / 255, not to [-1, 1])" \
    $S/vae-bce-target-scaled.yaml --out "$TMP/vae" --progress lines
[ ! -e "$TMP/vae" ]
ok $? "the refused spec leaves no run directory"

# specs/vae.yaml itself keeps its data in [0, 1].
run check specs/vae.yaml
is "$RC" 0 "specs/vae.yaml checks"

# A target whose range the check cannot follow: it passes check, and the run stops on
# the first batch, at the bce call, with exit code 1.
run check $S/bce-target-unknown-range.yaml
is "$RC" 0 "an unknown range passes check"
expect_error 1 "$S/bce-target-unknown-range.yaml:13:14: bce: target 1.15457 at element 183 is outside [0, 1]; bce targets are probabilities (is the data scaled to [-1, 1]?) (epoch 1, step 1)" \
    $S/bce-target-unknown-range.yaml --out "$TMP/run" --progress lines
grep -q "^  13 | " "$ERR"
ok $? "the runtime error quotes the spec line"
[ ! -s "$TMP/run/metrics.jsonl" ]
ok $? "no metrics row from the refused batch"

# The test split's evaluation stops at its first failing batch. Batches run a graph per
# thread at 2 threads and up (at batch 8 the copies of tiny-ae's graph are small enough
# to be made), and two can fail at once: the message is the first one's, whatever the
# thread count. (The target is in range for training, x = pixels / 255, and leaves it
# for the evaluation given another x, its range hidden by '** 1'.)
run $S/tiny-ae.yaml --out "$TMP/ae" --progress lines
is "$RC" 0 "tiny-ae trains an epoch"
for t in 1 2 3; do
    expect_error 1 "$S/tiny-ae.yaml:14:14: bce: target 1.24 at element 98 is outside [0, 1]; bce targets are probabilities (is the data scaled to [-1, 1]?) (test images 0-7)" \
        eval $S/tiny-ae.yaml --checkpoint "$TMP/ae" --set data.batch=8 --set 'data.x=flatten(pixels / 200) ** 1' \
        --threads $t
done

done_testing
