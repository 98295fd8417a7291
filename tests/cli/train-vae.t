#!/bin/sh
# The VAE family: specs/vae.yaml checks with the PyTorch example's parameter counts,
# and two epochs on the embedded subset lower both the training and the test loss.
. "$(dirname "$0")/lib.sh"

# p) check: encoder 784-400-40 (mu | logvar), decoder 20-400-784
run check specs/vae.yaml
is "$RC" 0 "check specs/vae.yaml exits 0"
totals=$(awk '/^model /{m = $2} /^  total:/{print m, $2, $3}' "$OUT")
is "$totals" "encoder 330,040 parameters,
decoder 322,784 parameters," "encoder has 330,040 parameters and decoder 322,784 (652,824 in all)"
grep -q '^all models: 652,824 parameters, ' "$OUT"
ok $? "652,824 parameters in all, as the PyTorch VAE"
grep -q '^  linear 40 *\[B, 40\] ' "$OUT"
ok $? "the encoder ends in 40 values: mu and logvar"
# 652,824 floats of values and of gradients, Adam's two moments, 527,808 floats for the
# step at batch 64, and the four sample sections' graphs, whose values share buffers.
is "$(grep '^memory planned: ' "$OUT")" "memory planned: 2.5 MB of parameters, 2.5 of gradients, 5.0 of optimizer state, 1.6 for the step, 2.6 for 4 sample sections: 14.2 MB" \
    "check prints the memory it plans"

# p) two epochs
run specs/vae.yaml --epochs 2 --out "$TMP/vae" --progress lines
exits_0 "two epochs exit 0"
M=$TMP/vae/metrics.jsonl
train1=$(json_field "$M" epoch 1 train_loss_per_image)
train2=$(json_field "$M" epoch 2 train_loss_per_image)
test1=$(json_field "$M" epoch 1 test_loss_per_image)
test2=$(json_field "$M" epoch 2 test_loss_per_image)
finite=0
for v in "$train1" "$train2" "$test1" "$test2"; do
    is_number "$v" || finite=1
done
ok $finite "the losses are finite numbers"
less "$train2" "$train1"
ok $? "the training loss falls: $train1, then $train2"
less "$test2" "$test1"
ok $? "the test loss (BCE-sum + KLD per image) falls: $test1, then $test2"
# BCE-sum over 784 pixels in [0, 1] plus a KL divergence is positive; the seed's
# [-1, 1] data made it negative.
less 0 "$test2"
ok $? "the test loss is positive"
[ -s "$TMP/vae/samples-epoch-002.png" ]
ok $? "a sample grid for each epoch"

done_testing
