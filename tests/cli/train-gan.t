#!/bin/sh
# The GAN family: specs/gan.yaml checks with the PyTorch example's parameter counts,
# and two epochs on the embedded subset give finite losses and sample grid PNGs.
. "$(dirname "$0")/lib.sh"

# p) check: the models of the classic PyTorch MNIST GAN
run check specs/gan.yaml
is "$RC" 0 "check specs/gan.yaml exits 0"
totals=$(awk '/^model /{m = $2} /^  total:/{print m, $2, $3}' "$OUT")
is "$totals" "G 559,632 parameters,
D 533,505 parameters," "G has 559,632 parameters and D 533,505"
grep -q '^  linear 784 *\[B, 784\]  *402192 ' "$OUT"
ok $? "G's last linear layer: [B, 784], 402,192 parameters"
grep -q '^  sigmoid *\[B, 1\] ' "$OUT"
ok $? "D ends in a sigmoid of shape [B, 1]"

# p) two epochs
run specs/gan.yaml --epochs 2 --out "$TMP/gan" --progress lines
exits_0 "two epochs exit 0"
M=$TMP/gan/metrics.jsonl
for e in 1 2; do
    finite "$M" $e "epoch $e: " train_loss_D train_loss_G test_loss_D test_loss_G
done
like "$(sed -n 2p "$OUT")" "epoch 2/2  loss_D * loss_G *" "stdout has one result line per epoch"
for e in 001 002; do
    png=$TMP/gan/samples-epoch-$e.png
    is "$(od -An -tx1 -N8 "$png" 2>/dev/null | tr -s ' \n' '  ' | sed 's/^ //; s/ $//')" "89 50 4e 47 0d 0a 1a 0a" \
        "samples-epoch-$e.png is a PNG"
done
# An 8x8 grid of 28x28 digits with a 2-pixel border: 8 * 30 + 2 = 242 pixels a side.
is "$(od -An -tu1 -j16 -N8 "$TMP/gan/samples-epoch-002.png" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//')" \
    "0 0 0 242 0 0 0 242" "the sample grid is 242x242"

done_testing
