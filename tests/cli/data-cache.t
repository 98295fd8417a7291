#!/bin/sh
# The cache of inflated data (include/aigc/dcache.h) from the command line: the first
# run leaves the training images' entry, the next ones read it, and a run is the same,
# bit for bit, with the cache empty, full or off. tests/test_idx.c tests the cache
# itself: damaged entries, replaced sources, where it lives.
. "$(dirname "$0")/lib.sh"

vae() {
    run specs/vae.yaml --progress lines --set hooks=tests/hooks/stop_step.lua "$@"
}
strip_seconds() {
    sed 's/"seconds":[^,}]*,\{0,1\}//' "$1"
}

AIGC_CACHE=$TMP/cache
export AIGC_CACHE
vae --out "$TMP/empty"
is "$RC" 0 "a run with an empty cache exits 0"
is "$(ls "$TMP/cache" | sed 's/^[0-9a-f]\{16\}-[0-9a-f]\{16\}-//')" "train-images-idx3-ubyte" \
    "it leaves one entry, the training images' (the 1,000 test images are below 1 MiB)"
vae --out "$TMP/full"
is "$RC" 0 "a run that reads the entry exits 0"
AIGC_CACHE=off
vae --out "$TMP/off"
is "$RC" 0 "a run with AIGC_CACHE=off exits 0"

for run in full off; do
    strip_seconds "$TMP/empty/metrics.jsonl" >"$TMP/m1"
    strip_seconds "$TMP/$run/metrics.jsonl" >"$TMP/m2"
    cmp -s "$TMP/m1" "$TMP/m2" && cmp -s "$TMP/empty/last.safetensors" "$TMP/$run/last.safetensors"
    ok $? "cache $run: the metrics and weights of the run with the cache empty"
done

# A cache directory that cannot be made: the run goes on from the source, silently.
: >"$TMP/file"
AIGC_CACHE=$TMP/file/cache
vae --out "$TMP/unwritable"
is "$RC" 0 "a cache that cannot be written: exit 0"
! grep -qi cache "$ERR" "$OUT"
ok $? "... and not a word about it"
cmp -s "$TMP/empty/last.safetensors" "$TMP/unwritable/last.safetensors"
ok $? "... and the same weights"

done_testing
