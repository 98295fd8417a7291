#!/bin/sh
# bench.sh — one Fashion-MNIST epoch of specs/gan.yaml and specs/vae.yaml, measured
# against this machine's own sgemm throughput (tests/bench/sgemm_probe.c, run here at
# the same thread count). A benchmark, not a test: it asserts no time. `make bench`
# builds the probe and runs this; docs/performance.md explains the figures.
#
#   scripts/bench.sh [--threads "1 2"] [--reps N] [--out FILE]
#
# Every figure is the median of N runs (default 3): other work on the machine makes single
# runs noisy. Per spec, thread count and compute backend (--backend: openblas, and onednn
# when the build has it) it reports
#   wall       the whole command (/usr/bin/time): data loading, the epoch, the test
#              split's evaluation, the sample grids, the checkpoint
#   samples/s  the training loop alone (its last progress line)
#   GFLOP/s    the training FLOPs per sample (below) times samples/s
#   of sgemm   that as a fraction of the probe's rate for the models' own sgemm shapes
#              ("mix", cut by the runtime's pool as training cuts them) and for a
#              2048-square sgemm (the BLAS's best case, the pool's or OpenBLAS's
#              threads, whichever is faster)
#   RSS        peak resident memory (/usr/bin/time)
#   speed      samples/s against the openblas backend's at the same spec and threads
#   steal %    the share of the machine's CPU time its virtual machine host gave to
#              others during the runs (/proc/stat): above a few percent, the figures
#              measure the neighbours too
# and the time of `aigc-run check specs/gan.yaml`, and of `check specs/vae.yaml` on
# Fashion-MNIST with the cache of inflated data off and full (the timed runs read it).
#
# Training FLOPs per sample, from the forward FLOPs F_m per model and F1_m of its first
# layer that `aigc-run check` prints, counting a layer's backward as one forward's worth
# for its weight gradient plus one for its input gradient, when the input needs one:
#   gan: G once; D on real, on detached fake, on fake again for the G step: 3 F_D.
#        D step backward through D twice, without the input gradient of D's first layer:
#        2 (2 F_D - F1_D). G step backward: input gradients only through D (F_D), then
#        G without its first layer's input gradient (2 F_G - F1_G).
#        total = 3 F_G + 8 F_D - 2 F1_D - F1_G
#   vae: encoder and decoder once; backward through both, no input gradient for the
#        encoder's first layer: total = 3 F_enc + 3 F_dec - F1_enc
# Element-wise work (activations, the reparameterization, the losses, Adam) is not
# counted: it is what separates the achieved rate from the sgemm one.
#
# Environment: AIGC_RUN (default ./aigc-run), PROBE (default build/tests/bench/sgemm_probe),
# DATA (default /usr/share/datasets/fashion-mnist).
set -eu

me=bench.sh
out=runs/bench/results.txt
help_lines=9
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
bench_options "$@"

AIGC_RUN=${AIGC_RUN:-./aigc-run}
PROBE=${PROBE:-build/tests/bench/sgemm_probe}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
for f in "$AIGC_RUN" "$PROBE"; do
    [ -x "$f" ] || { echo "bench.sh: $f is missing (run make bench)" >&2; exit 1; }
done
[ -e "$DATA/train-images-idx3-ubyte.gz" ] || [ -e "$DATA/train-images-idx3-ubyte" ] || {
    echo "bench.sh: no Fashion-MNIST in $DATA (Debian: apt-get install dataset-fashion-mnist)" >&2
    exit 1
}
[ -x /usr/bin/time ] || { echo "bench.sh: /usr/bin/time is missing (Debian: apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"

# The training loop's samples/s: the last progress line's.
progress_rate() {
    awk '/samples\/s/ {for (i = 1; i < NF; i++) if ($(i + 1) == "samples/s") r = $i} END {print r}' "$tmp/err"
}

# flops SPEC: the training FLOPs per sample, by the formulas above.
flops() {
    "$AIGC_RUN" check "specs/$1.yaml" | awk -v spec="$1" '
        /^model / { m = $2; first = 1; next }
        m != "" && first && $1 != "layer" { f1[m] = $NF; first = 0 }
        /^  total: / { gsub(",", ""); f[m] = $4 }
        END {
            if (spec == "gan") print 3 * f["G"] + 8 * f["D"] - 2 * f1["D"] - f1["G"]
            else if (spec == "vae") print 3 * f["encoder"] + 3 * f["decoder"] - f1["encoder"]
        }'
}

# check_ms ARGS...: the median time of `aigc-run check ARGS` over 5 runs, in milliseconds.
check_ms() {
    for i in 1 2 3 4 5; do
        /usr/bin/time -f %e -o "$tmp/time" "$AIGC_RUN" check "$@" >/dev/null
        awk '{print $1 * 1000}' "$tmp/time"
    done | median
}

# The cache of inflated data (include/aigc/dcache.h) in a directory of the bench's own,
# filled before anything is timed, so that every timed run reads it as a user's second
# run does. Loading the data set with and without it is timed apart.
export AIGC_CACHE=off
load_cold=$(check_ms specs/vae.yaml --set data.dataset=fashion-mnist --set "data.path=$DATA")
AIGC_CACHE=$tmp/cache
"$AIGC_RUN" check specs/vae.yaml --set data.dataset=fashion-mnist --set "data.path=$DATA" >/dev/null
"$AIGC_RUN" check specs/gan.yaml >/dev/null
load_warm=$(check_ms specs/vae.yaml --set data.dataset=fashion-mnist --set "data.path=$DATA")
gan_check=$(check_ms specs/gan.yaml)

{
    echo "aigc-run bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, medians of $reps runs"
    echo "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "check specs/gan.yaml: $gan_check ms"
    echo "check specs/vae.yaml on Fashion-MNIST: $load_cold ms inflating it, $load_warm ms from the cache"
    echo
    printf '%-4s %3s %-8s %8s %10s %8s %13s %13s %8s %7s %6s\n' spec thr backend "wall s" samples/s GFLOP/s \
        "of sgemm mix" "of 2048^2" "RSS MB" "steal %" speed
} >"$tmp/table"

backends=openblas
"$AIGC_RUN" check specs/gan.yaml --backend onednn >/dev/null 2>&1 && backends="openblas onednn"
for t in $threads; do
    for b in $backends; do
        AIGC_BACKEND=$b "$PROBE" -t "$t" gan=100,256,512,784+784,512,256,1 vae=784,400,40+20,400,784 >"$tmp/probe-$t-$b"
        echo "backend $b" >>"$tmp/probes"
        cat "$tmp/probe-$t-$b" >>"$tmp/probes"
        # The bound: the square sgemm cut by the pool or on OpenBLAS's threads, the faster.
        square=$(awk '$1 == "square" || $1 == "square-blas" {if ($3 > s) s = $3} END {print s}' "$tmp/probe-$t-$b")
        for spec in gan vae; do
            mix=$(awk -v s="$spec" '$1 == "mix" && $2 == s {print $3}' "$tmp/probe-$t-$b")
            fl=$(flops "$spec")
            timed_runs progress_rate "$AIGC_RUN" "specs/$spec.yaml" \
                --set data.dataset=fashion-mnist --set "data.path=$DATA" --epochs 1 \
                --threads "$t" --backend "$b" --progress lines --out "$tmp/run"
            wall=$(run_median 1)
            rss=$(run_median 2)
            sps=$(run_median 3)
            steal=$(run_median 4)
            [ "$b" = openblas ] && echo "$sps" >"$tmp/base-$spec-$t"
            awk -v s="$spec" -v t="$t" -v b="$b" -v w="$wall" -v sps="$sps" -v fl="$fl" -v mix="$mix" \
                -v sq="$square" -v rss="$rss" -v st="$steal" -v base="$(cat "$tmp/base-$spec-$t")" 'BEGIN {
                    gf = fl * sps * 1e-9
                    printf "%-4s %3d %-8s %8.2f %10.0f %8.1f %7.0f%% of %-4.0f %5.0f%% of %-4.0f %8.0f %7.1f %5.2fx\n",
                        s, t, b, w, sps, gf, 100 * gf / mix, mix, 100 * gf / sq, sq, rss, st, sps / base
                }' >>"$tmp/table"
        done
    done
done

{
    echo
    echo "training FLOPs per sample: gan $(flops gan), vae $(flops vae)"
    echo
    echo "sgemm probe (GFLOP/s):"
    cat "$tmp/probes"
} >>"$tmp/table"
cp "$tmp/table" "$out"
cat "$out"
echo "(written to $out)"
