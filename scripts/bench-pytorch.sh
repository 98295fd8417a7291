#!/bin/sh
# bench-pytorch.sh — the PyTorch side of scripts/bench.sh: one Fashion-MNIST epoch of
# scripts/baselines/gan.py and vae.py (the same models, batch 64, Adam), for the
# side-by-side table in docs/performance.md. Needs Debian's PyTorch (python3-torch).
#
#   scripts/bench-pytorch.sh [--threads "1 2"] [--reps N] [--out FILE]
#
# Per script and thread count (torch's and OpenBLAS's threads both set to it), the
# median over N runs (default 3) of the wall time, of the training loop's samples/s (the
# epoch's train_seconds that the script prints) and of peak RSS.
#
# Environment: PYTHON (default /usr/bin/python3), DATA (default
# /usr/share/datasets/fashion-mnist).
set -eu

threads="1 2"
reps=3
out=runs/bench/pytorch.txt
while [ $# -gt 0 ]; do
    case $1 in
    --threads) threads=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-pytorch.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done

PYTHON=${PYTHON:-/usr/bin/python3}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
"$PYTHON" -c 'import torch' 2>/dev/null || {
    echo "bench-pytorch.sh: $PYTHON has no torch (Debian: apt-get install python3-torch)" >&2
    exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"

# The training images, for samples/s (vae.py does not print their count).
images=$("$PYTHON" -c "import sys; sys.path.insert(0, 'scripts/baselines'); import common
print(common.read_idx('$DATA/train-labels-idx1-ubyte').shape[0])")

median() { sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

{
    echo "PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)') bench, $(date -u '+%Y-%m-%d %H:%M UTC'), medians of $reps runs"
    printf '%-4s %3s %8s %10s %8s\n' spec thr "wall s" samples/s "RSS MB"
} >"$tmp/table"
for t in $threads; do
    for spec in gan vae; do
        : >"$tmp/runs"
        r=1
        while [ "$r" -le "$reps" ]; do
            # gan.py --beta1 0.5: the betas of specs/gan.yaml.
            extra=
            [ "$spec" = gan ] && extra="--beta1 0.5"
            # shellcheck disable=SC2086
            /usr/bin/time -f '%e %M' -o "$tmp/time" "$PYTHON" "scripts/baselines/$spec.py" \
                --data "$DATA" --epochs 1 --threads "$t" $extra >"$tmp/out"
            secs=$(sed -n 's/.*"train_seconds": \([0-9.]*\).*/\1/p' "$tmp/out" | tail -1)
            echo "$(cat "$tmp/time") $(awk -v n="$images" -v s="$secs" 'BEGIN {print n / s}')" >>"$tmp/runs"
            r=$((r + 1))
        done
        awk -v s="$spec" -v t="$t" -v w="$(awk '{print $1}' "$tmp/runs" | median)" \
            -v sps="$(awk '{print $3}' "$tmp/runs" | median)" \
            -v rss="$(awk '{print $2 / 1024}' "$tmp/runs" | median)" \
            'BEGIN {printf "%-4s %3d %8.2f %10.0f %8.0f\n", s, t, w, sps, rss}' >>"$tmp/table"
    done
done
cp "$tmp/table" "$out"
cat "$out"
echo "(written to $out)"
