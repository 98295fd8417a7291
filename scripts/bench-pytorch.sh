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

me=bench-pytorch.sh
out=runs/bench/pytorch.txt
help_lines=10
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

# The training loop's samples/s: the training images over the epoch's train_seconds.
train_rate() {
    secs=$(sed -n 's/.*"train_seconds": \([0-9.]*\).*/\1/p' "$tmp/out" | tail -1)
    awk -v n="$images" -v s="$secs" 'BEGIN {print n / s}'
}

{
    echo "PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)') bench, $(date -u '+%Y-%m-%d %H:%M UTC'), medians of $reps runs"
    printf '%-4s %3s %8s %10s %8s %7s\n' spec thr "wall s" samples/s "RSS MB" "steal %"
} >"$tmp/table"
for t in $threads; do
    for spec in gan vae; do
        # gan.py --beta1 0.5: the betas of specs/gan.yaml.
        extra=
        [ "$spec" = gan ] && extra="--beta1 0.5"
        # shellcheck disable=SC2086
        timed_runs train_rate "$PYTHON" "scripts/baselines/$spec.py" --data "$DATA" --epochs 1 --threads "$t" $extra
        awk -v s="$spec" -v t="$t" -v w="$(run_median 1)" -v sps="$(run_median 3)" -v rss="$(run_median 2)" \
            -v st="$(run_median 4)" 'BEGIN {printf "%-4s %3d %8.2f %10.0f %8.0f %7.1f\n", s, t, w, sps, rss, st}' >>"$tmp/table"
    done
done
cp "$tmp/table" "$out"
cat "$out"
echo "(written to $out)"
