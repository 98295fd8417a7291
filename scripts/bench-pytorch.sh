#!/bin/sh
# bench-pytorch.sh — the PyTorch side of scripts/bench.sh: one Fashion-MNIST epoch of
# scripts/baselines/gan.py and vae.py (the same models, batch 64, Adam), and the first
# steps of scripts/baselines/ddpm.py (specs/ddpm.yaml's U-Net on data/mnist). Needs
# Debian's PyTorch (python3-torch); scripts/bench.sh runs this for its PyTorch column.
#
#   scripts/bench-pytorch.sh [--threads "1 2"] [--reps N] [--ddpm-steps N] [--out FILE]
#
# Per script and thread count (torch's and OpenBLAS's threads both set to it), the
# median over N runs (default 3) of the wall time, of the training loop's samples/s (the
# training images over the epoch's train_seconds; the DDPM's samples_per_second over
# its --ddpm-steps steps, default 30), of peak RSS and of the share of the cores it got.
#
# Environment: PYTHON (default /usr/bin/python3), DATA (default
# /usr/share/datasets/fashion-mnist).
set -eu

me=bench-pytorch.sh
out=runs/bench/pytorch.txt
help_lines=12
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
bench_options "$@"

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

# The training loop's samples/s: the script's own figure when it prints one (ddpm.py),
# else the training images over the epoch's train_seconds.
train_rate() {
    sps=$(sed -n 's/.*"samples_per_second": \([0-9.]*\).*/\1/p' "$tmp/out" | tail -1)
    secs=$(sed -n 's/.*"train_seconds": \([0-9.]*\).*/\1/p' "$tmp/out" | tail -1)
    awk -v n="$images" -v s="$secs" -v r="$sps" 'BEGIN {print r != "" ? r : n / s}'
}

{
    echo "PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)') bench, $(date -u '+%Y-%m-%d %H:%M UTC'), each figure the median of $reps runs"
    printf '%-4s %3s %8s %10s %8s %7s %6s\n' spec thr "wall s" samples/s "RSS MB" "steal %" "cpu %"
} >"$tmp/table"
for t in $threads; do
    for spec in gan vae ddpm; do
        case $spec in
        gan) args="--data $DATA --epochs 1 --beta1 0.5" ;; # the betas of specs/gan.yaml
        vae) args="--data $DATA --epochs 1" ;;
        ddpm) args="--data data/mnist --steps $ddpm_steps" ;; # specs/ddpm.yaml's data
        esac
        # shellcheck disable=SC2086
        timed_runs train_rate "$PYTHON" "scripts/baselines/$spec.py" --threads "$t" $args
        awk -v s="$spec" -v t="$t" -v w="$(run_median 1)" -v sps="$(run_median 3)" -v rss="$(run_median 2)" \
            -v st="$(run_median 4)" -v cpu="$(run_median 5)" \
            'BEGIN {printf "%-4s %3d %8.2f %10.1f %8.0f %7.1f %6.0f\n", s, t, w, sps, rss, st, cpu}' >>"$tmp/table"
    done
done
cp "$tmp/table" "$out"
cat "$out"
echo "(written to $out)"
