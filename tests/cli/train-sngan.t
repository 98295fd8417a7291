#!/bin/sh
# specs/sngan.yaml, trained for short real runs: the hinge loss, and spectral
# normalization whose buffers u and v are saved, restored and loadable by PyTorch.
. "$(dirname "$0")/lib.sh"

# s) check: the layers and their parameter counts, which leave the buffers out
run check specs/sngan.yaml
is "$RC" 0 "check specs/sngan.yaml exits 0"
grep -q '^  linear 512 sn=1 *\[B, 512\] *401920 ' "$OUT"
ok $? "D's first layer: linear 512 sn=1, 401,920 parameters (u and v are buffers)"

# s) two epochs
S="specs/sngan.yaml --progress lines"
run $S --epochs 2 --out "$TMP/sngan"
exits_0 "sngan: two epochs exit 0"
M=$TMP/sngan/metrics.jsonl
for e in 1 2; do
    finite "$M" $e "sngan epoch $e: " train_loss_D train_loss_G test_loss_D test_loss_G
    # The hinge loss of a discriminator that cannot tell real from fake (all scores 0)
    # is 2; one that learned something scores below it.
    d=$(json_field "$M" epoch $e train_loss_D)
    less "$d" 1.9 && less 0 "$d"
    ok $? "sngan epoch $e: the discriminator learns, 0 < train_loss_D < 1.9 ($d)"
done
W=$TMP/sngan/last.safetensors
tensor_values "$W" D.0.weight_u >/dev/null 2>&1 && tensor_values "$W" D.0.weight_v >/dev/null 2>&1 && tensor_values "$W" D.0.weight_orig >/dev/null 2>&1
ok $? "the checkpoint has PyTorch's names: D.0.weight_orig, D.0.weight_u, D.0.weight_v"
is "$(tensor_values "$W" D.0.weight_u | wc -l | tr -d ' ')" 512 "weight_u is [512]"
is "$(tensor_values "$W" D.0.weight_v | wc -l | tr -d ' ')" 784 "weight_v is [784]"
nu=$(tensor_values "$W" D.2.weight_u | awk '{ s += $1 * $1 } END { printf "%.6f", s }')
is "$nu" 1.000000 "weight_u is a unit vector after training (|u|^2 = $nu)"
is "$(od -An -tx1 -N8 "$TMP/sngan/samples-epoch-002.png" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//')" \
    "89 50 4e 47 0d 0a 1a 0a" "sngan: samples-epoch-002.png is a PNG"

# s) one epoch, then --resume: the power iteration goes on from the saved u and v, and
# the run ends bit for bit as the uninterrupted one.
run $S --epochs 1 --out "$TMP/sngan-resumed"
run $S --epochs 2 --out "$TMP/sngan-resumed" --resume
is "$RC" 0 "sngan: --resume for the second epoch exits 0"
cmp -s "$W" "$TMP/sngan-resumed/last.safetensors"
ok $? "resumed after epoch 1, the weights and the buffers are the uninterrupted run's"

# s) evaluation runs no power iteration: `aigc-run eval` of the saved weights and
# buffers gives the test loss the run measured before saving them
run eval specs/sngan.yaml --checkpoint "$W" --json
is "$RC" 0 "sngan: eval exits 0"
got=$(sed -n 's/.*"test_loss_D":\([^,}]*\).*/\1/p' "$OUT")
want=$(json_field "$M" epoch 2 test_loss_D)
is "$got" "$want" "eval's test_loss_D is epoch 2's ($want)"

done_testing
