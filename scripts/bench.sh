#!/bin/sh
# bench.sh — aigc-run's speed on three workloads, on each compute backend and against
# PyTorch, in one run: one Fashion-MNIST epoch of specs/gan.yaml and of specs/vae.yaml,
# and the training samples/s of specs/ddpm.yaml over its first steps. A benchmark, not a
# test: it asserts no time. `make bench` builds what it needs and runs this;
# docs/performance.md explains the figures.
#
#   scripts/bench.sh [--threads "1 2"] [--reps N] [--ddpm-steps N] [--out FILE]
#
# Every figure is the median of N runs (default 3) at each thread count (default 2): other
# work on the machine makes single runs noisy. Per workload, thread count and backend
# (openblas, onednn when the build has it, and pytorch: scripts/bench-pytorch.sh, when
# /usr/bin/python3 has torch) it reports
#   wall       the whole command (/usr/bin/time): for the epochs, data loading, the
#              epoch, the test split's evaluation, the sample grids, the checkpoint
#   samples/s  the training loop alone: the epoch's last progress line; for the DDPM,
#              its steps but the first (metrics.jsonl's step rows), the first being
#              oneDNN's primitive creation and the first touch of the step's memory
#   epoch s    60,000 training images at that rate
#   GFLOP/s    the training FLOPs per sample (below) times samples/s
#   of peak    that as a fraction of the machine's peak: oneDNN's 1024-cube sgemm on
#              one thread (tests/bench/backend_probe.c, the higher of a probe before
#              and one after the runs), times the threads; the probes' rates on two
#              threads are printed too, with their ratio to one
#   RSS        peak resident memory (/usr/bin/time)
#   steal %    the share of the machine's CPU time its virtual machine host gave to
#              others during the runs (/proc/stat): above a few percent, the figures
#              measure the neighbours too
#   cpu %      the command's CPU time over its wall time: near 100 per thread when it had
#              the cores; less when other processes on the machine took them
# then side by side per thread count, with the ratios onednn/openblas and onednn/pytorch
# of samples/s (how many times faster), and the targets of docs/performance.md.
#
# Training FLOPs per sample, from the forward FLOPs F_m per model and F1_m of its first
# layer that `aigc-run check` prints, counting a layer's backward as one forward's worth
# for its weight gradient plus one for its input gradient, when the input needs one:
#   gan:  G once; D on real, on detached fake, on fake again for the G step: 3 F_D.
#         D step backward through D twice, without the input gradient of D's first
#         layer: 2 (2 F_D - F1_D). G step backward: input gradients only through D
#         (F_D), then G without its first layer's input gradient (2 F_G - F1_G).
#         total = 3 F_G + 8 F_D - 2 F1_D - F1_G
#   vae:  encoder and decoder once; backward through both, no input gradient for the
#         encoder's first layer: total = 3 F_enc + 3 F_dec - F1_enc
#   ddpm: the U-Net once and backward, no input gradient for the first convolution:
#         total = 3 F - F1_conv
# Element-wise work (activations, norms, the losses, Adam) is not counted: it is what
# separates the achieved rate from the sgemm one.
#
# Environment: AIGC_RUN (default ./aigc-run), PROBE (default
# build/tests/bench/backend_probe), DATA (default /usr/share/datasets/fashion-mnist),
# PYTHON (default /usr/bin/python3).
set -eu

me=bench.sh
out=runs/bench/results.txt
help_lines=42
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
bench_options "$@"

AIGC_RUN=${AIGC_RUN:-./aigc-run}
PROBE=${PROBE:-build/tests/bench/backend_probe}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
[ -x "$AIGC_RUN" ] || { echo "bench.sh: $AIGC_RUN is missing (run make bench)" >&2; exit 1; }
[ -e "$DATA/train-images-idx3-ubyte.gz" ] || [ -e "$DATA/train-images-idx3-ubyte" ] || {
    echo "bench.sh: no Fashion-MNIST in $DATA (Debian: apt-get install dataset-fashion-mnist)" >&2
    exit 1
}
[ -x /usr/bin/time ] || { echo "bench.sh: /usr/bin/time is missing (Debian: apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"

# The epoch's samples/s: its last progress line's.
progress_rate() {
    awk '/samples\/s/ {for (i = 1; i < NF; i++) if ($(i + 1) == "samples/s") r = $i} END {print r}' "$tmp/err"
}

# The DDPM's samples/s from the step rows of metrics.jsonl (one a step): from the first
# row to the last, batch 64.
ddpm_rate() {
    sed -n 's/.*"kind":"step".*"step":\([0-9]*\),"seconds":\([0-9.]*\).*/\1 \2/p' "$tmp/run/metrics.jsonl" |
        awk 'NR == 1 {s0 = $1; t0 = $2} {s = $1; t = $2} END {print (s - s0) * 64 / (t - t0)}'
}

# A hook that stops the DDPM after its measured steps (docs/hooks.md).
printf 'function on_step(run)\n  if run.step == %d then aigc.stop("bench: %d steps") end\nend\n' \
    "$ddpm_steps" "$ddpm_steps" >"$tmp/stop.lua"

# flops SPEC: the training FLOPs per sample, by the formulas above.
flops() {
    "$AIGC_RUN" check "specs/$1.yaml" | awk -v spec="$1" '
        /^model / { m = $2; first = 1; next }
        m != "" && first && $1 != "layer" { f1[m] = $NF; first = 0 }
        m != "" && $2 == "conv2d" && !c1[m] { c1[m] = $NF }
        /^  total: / { gsub(",", ""); f[m] = $4 }
        END {
            if (spec == "gan") print 3 * f["G"] + 8 * f["D"] - 2 * f1["D"] - f1["G"]
            else if (spec == "vae") print 3 * f["encoder"] + 3 * f["decoder"] - f1["encoder"]
            else print 3 * f["eps_model"] - c1["eps_model"]
        }'
}

# The machine's peak: oneDNN's 1024-cube sgemm on one thread (the dnnl1 column), the
# highest of the probes so far: other processes lower a probe as they lower a run. Each
# probe also cuts it over 2 threads (the last column): whether the machine's two cores
# gave twice one core's rate in those minutes, which its host does not always grant.
probe_peak() {
    [ -x "$PROBE" ] || return 0
    "$PROBE" -t 2 -q 1024 >>"$tmp/probe"
    peak=$(awk '$1 == "gemm" && $2 == "square" && $8 > p {p = $8} END {print p}' "$tmp/probe")
    pair=$(awk '$1 == "gemm" && $2 == "square" {printf "%s%.1f (%.2fx)", n++ ? ", " : "", $10, $10 / $8}' "$tmp/probe")
}
peak=
pair=
probe_peak

# The cache of inflated data (include/aigc/dcache.h) in a directory of the bench's own,
# filled before anything is timed, so that every timed run reads it as a user's second
# run does.
export AIGC_CACHE="$tmp/cache"
"$AIGC_RUN" check specs/vae.yaml --set data.dataset=fashion-mnist --set "data.path=$DATA" >/dev/null
"$AIGC_RUN" check specs/ddpm.yaml >/dev/null

backends=openblas
"$AIGC_RUN" check specs/gan.yaml --backend onednn >/dev/null 2>&1 && backends="openblas onednn"
pytorch=yes
scripts/bench-pytorch.sh --threads "$threads" --reps "$reps" --ddpm-steps "$ddpm_steps" \
    --out "$tmp/pytorch" >/dev/null 2>"$tmp/pytorch-err" || pytorch="no ($(tail -1 "$tmp/pytorch-err"))"

# row SPEC THREADS BACKEND WALL SAMPLES/S RSS STEAL CPU: a run's medians, kept in
# $tmp/rows for the tables, which are made once the peak is known.
row() { echo "$@" >>"$tmp/rows"; }

{
    echo "aigc-run bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, each figure the median of $reps runs"
    awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo
    echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "PyTorch: $pytorch"
    echo
} >"$tmp/table"
for t in $threads; do
    for b in $backends; do
        for spec in gan vae ddpm; do
            if [ "$spec" = ddpm ]; then
                timed_runs ddpm_rate "$AIGC_RUN" specs/ddpm.yaml --set "hooks=$tmp/stop.lua" \
                    --set train.log_every=1 --threads "$t" --backend "$b" --progress lines --out "$tmp/run"
            else
                timed_runs progress_rate "$AIGC_RUN" "specs/$spec.yaml" --set data.dataset=fashion-mnist \
                    --set "data.path=$DATA" --epochs 1 --threads "$t" --backend "$b" --progress lines --out "$tmp/run"
            fi
            row "$spec" "$t" "$b" "$(run_median 1)" "$(run_median 3)" "$(run_median 2)" "$(run_median 4)" \
                "$(run_median 5)"
        done
    done
    if [ "$pytorch" = yes ]; then
        for spec in gan vae ddpm; do
            # shellcheck disable=SC2046
            row $(awk -v s="$spec" -v t="$t" '$1 == s && $2 == t {print $1, $2, "pytorch", $3, $4, $5, $6, $7}' \
                "$tmp/pytorch")
        done
    fi
done

probe_peak

{
    echo "peak: oneDNN sgemm 1024^3 on one thread, ${peak:-no oneDNN} GFLOP/s"
    [ -n "$pair" ] && echo "on two threads, in the probes before and after the runs: $pair GFLOP/s"
    echo
    printf '%-4s %3s %-8s %8s %10s %8s %8s %7s %7s %7s %6s\n' spec thr backend "wall s" samples/s "epoch s" \
        GFLOP/s "of peak" "RSS MB" "steal %" "cpu %"
    while read -r s t b w sps rss st cpu; do
        awk -v s="$s" -v t="$t" -v b="$b" -v w="$w" -v sps="$sps" -v rss="$rss" -v st="$st" -v cpu="$cpu" \
            -v fl="$(flops "$s")" -v peak="$peak" 'BEGIN {
                gf = fl * sps * 1e-9
                printf "%-4s %3d %-8s %8.2f %10.1f %8s %8.1f %7s %7.0f %7.1f %6.0f\n", s, t, b, w, sps,
                    s == "ddpm" ? "-" : sprintf("%.2f", 60000 / sps), gf,
                    peak ? sprintf("%.1f%%", 100 * gf / (peak * t)) : "-", rss, st, cpu
            }'
    done <"$tmp/rows"
} >>"$tmp/table"

# The side-by-side table: per backend the epoch's seconds (the DDPM's samples/s), the
# ratios of samples/s, and the target.
{
    echo
    printf '%-16s %3s %9s %9s %9s %16s %15s  %s\n' workload thr openblas onednn pytorch onednn/openblas \
        onednn/pytorch target
    for t in $threads; do
        for spec in gan vae ddpm; do
            case $spec in
            gan) what="gan epoch, s" target="<= 3.0 s" ;;
            vae) what="vae epoch, s" target="<= 1.2 s" ;;
            ddpm) what="ddpm samples/s" target=">= 500 samples/s and 3.5x pytorch" ;;
            esac
            awk -v s="$spec" -v t="$t" -v what="$what" -v target="$target" '
                $1 == s && $2 == t { r[$3] = $5 }
                function show(x) { return !x ? "-" : s == "ddpm" ? sprintf("%.1f", x) : sprintf("%.2f", 60000 / x) }
                function ratio(a, b) { return a && b ? sprintf("%.2fx", a / b) : "-" }
                END {
                    printf "%-16s %3d %9s %9s %9s %16s %15s  %s\n", what, t, show(r["openblas"]), show(r["onednn"]),
                        show(r["pytorch"]), ratio(r["onednn"], r["openblas"]), ratio(r["onednn"], r["pytorch"]), target
                }' "$tmp/rows"
        done
    done
    echo
    echo "ratios: samples/s over samples/s (how many times faster); epochs: 60,000 images at the training loop's rate"
    echo "training FLOPs per sample: gan $(flops gan), vae $(flops vae), ddpm $(flops ddpm)"
    if [ -s "$tmp/probe" ]; then echo; cat "$tmp/probe"; fi
    if [ "$pytorch" = yes ]; then echo; cat "$tmp/pytorch"; fi
} >>"$tmp/table"
cp "$tmp/table" "$out"
cat "$out"
echo "(written to $out)"
