#!/bin/sh
# What a Lua hook costs: one epoch of specs/gan.yaml with no hook and with a hook that
# defines an empty on_step (called at every step), RUNS times each, interleaved so that
# a drift of the machine hits both alike. Prints the median wall time of each and the
# overhead. A benchmark: it asserts nothing.
#
#   sh scripts/bench/hooks.sh [RUNS] [extra aigc-run options, e.g. --set data.path=...]
#
# On a busy machine wall times are noise: run it on a quiet one. tests/test_hooks.c
# prints the cost of one empty on_step call in nanoseconds, measured in process.
set -eu
cd "$(dirname "$0")/../.."
RUNS=${1:-7}
[ $# -gt 0 ] && shift
make -s aigc-run
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
sed 's#^hooks:.*##' specs/gan.yaml > "$TMP/plain.yaml"
{ cat "$TMP/plain.yaml"; echo "hooks: scripts/bench/empty_on_step.lua"; } > "$TMP/hooked.yaml"

# Wall seconds of one run, from the shell's clock in nanoseconds.
wall() {
    spec=$1
    shift
    t0=$(date +%s%N)
    ./aigc-run "$spec" --epochs 1 --progress lines --out "$TMP/run" "$@" > /dev/null 2>&1
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000000 ))"
}

: > "$TMP/plain.ms"
: > "$TMP/hooked.ms"
i=0
while [ "$i" -lt "$RUNS" ]; do
    wall "$TMP/plain.yaml" "$@" >> "$TMP/plain.ms"
    wall "$TMP/hooked.yaml" "$@" >> "$TMP/hooked.ms"
    i=$((i + 1))
done
median() { sort -n "$1" | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
p=$(median "$TMP/plain.ms")
h=$(median "$TMP/hooked.ms")
steps=$(sed -n 's/.*"kind":"epoch","epoch":1,"step":\([0-9]*\).*/\1/p' "$TMP/run/metrics.jsonl")
echo "GAN epoch, median of $RUNS runs: no hook ${p} ms, empty on_step ${h} ms ($steps calls)"
awk -v p="$p" -v h="$h" 'BEGIN { printf "hook overhead: %+.2f%% of the epoch\n", 100 * (h - p) / p }'
