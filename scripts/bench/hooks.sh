#!/bin/sh
# What a Lua hook costs: one epoch of specs/gan.yaml with no hook and with a hook that
# defines an empty on_step (called at every step), RUNS times each, interleaved so that
# a drift of the machine hits both alike. Prints the median CPU time of each and the
# overhead. A benchmark: it asserts nothing.
#
#   sh scripts/bench/hooks.sh [RUNS] [extra aigc-run options, e.g. --set data.path=...]
#
# On a busy machine even CPU times drift by a few percent: run it on a quiet one.
# tests/test_hooks.c prints the cost of one empty on_step call in nanoseconds,
# measured in process.
set -eu
cd "$(dirname "$0")/../.."
RUNS=${1:-7}
[ $# -gt 0 ] && shift
make -s aigc-run
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
sed 's#^hooks:.*##' specs/gan.yaml > "$TMP/plain.yaml"
{ cat "$TMP/plain.yaml"; echo "hooks: scripts/bench/empty_on_step.lua"; } > "$TMP/hooked.yaml"

# CPU milliseconds (user + system) of one run: less disturbed than wall time by other
# work on the machine, which takes cores but not this process's instructions.
cpu_ms() {
    spec=$1
    shift
    /usr/bin/time -f "%U %S" -o "$TMP/time" ./aigc-run "$spec" --epochs 1 --progress lines \
        --out "$TMP/run" "$@" > /dev/null 2>&1
    awk '{ printf "%d\n", ($1 + $2) * 1000 }' "$TMP/time"
}

: > "$TMP/plain.ms"
: > "$TMP/hooked.ms"
i=0
while [ "$i" -lt "$RUNS" ]; do
    cpu_ms "$TMP/plain.yaml" "$@" >> "$TMP/plain.ms"
    cpu_ms "$TMP/hooked.yaml" "$@" >> "$TMP/hooked.ms"
    i=$((i + 1))
done
median() { sort -n "$1" | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
p=$(median "$TMP/plain.ms")
h=$(median "$TMP/hooked.ms")
steps=$(sed -n 's/.*"kind":"epoch","epoch":1,"step":\([0-9]*\).*/\1/p' "$TMP/run/metrics.jsonl")
echo "GAN epoch, median CPU time of $RUNS runs: no hook ${p} ms, empty on_step ${h} ms ($steps calls)"
awk -v p="$p" -v h="$h" 'BEGIN { printf "hook overhead: %+.2f%% of the epoch\n", 100 * (h - p) / p }'
