#!/bin/sh
# The same spec, seed and data give the same run, bit for bit (one thread, the default,
# and two, on each backend): metrics, printed results and sample grids; and the same evaluation at any
# thread count. Another seed gives another run.
. "$(dirname "$0")/lib.sh"

# o) specs/gan.yaml, one epoch of the embedded subset, three times
gan() {
    run specs/gan.yaml --epochs 1 --set data.batch=64 --progress lines "$@"
}
strip_seconds() {
    sed 's/"seconds":[^,}]*,\{0,1\}//' "$1"
}

gan --out "$TMP/run1"
is "$RC" 0 "first run exits 0"
cp "$OUT" "$TMP/stdout1"
gan --out "$TMP/run2"
is "$RC" 0 "second run exits 0"
cp "$OUT" "$TMP/stdout2"
gan --out "$TMP/run3" --seed 1
is "$RC" 0 "a run with --seed 1 exits 0"

strip_seconds "$TMP/run1/metrics.jsonl" >"$TMP/m1"
strip_seconds "$TMP/run2/metrics.jsonl" >"$TMP/m2"
strip_seconds "$TMP/run3/metrics.jsonl" >"$TMP/m3"
[ "$(grep -c '"kind":"step"' "$TMP/m1")" -ge 2 ]
ok $? "the metrics hold step rows"
cmp -s "$TMP/m1" "$TMP/m2"
ok $? "the same seed: identical metrics, but for the seconds"
if ! cmp -s "$TMP/m1" "$TMP/m2"; then diag "$(diff "$TMP/m1" "$TMP/m2" | head -10)"; fi
cmp -s "$TMP/stdout1" "$TMP/stdout2"
ok $? "the same seed: identical results on stdout"
cmp -s "$TMP/run1/samples-epoch-001.png" "$TMP/run2/samples-epoch-001.png"
ok $? "the same seed: identical sample grids"

# Another seed: other noise, other initial weights, another data order.
l1=$(json_field "$TMP/m1" step 1 loss_D)
l3=$(json_field "$TMP/m3" step 1 loss_D)
is_number "$l1" && is_number "$l3" && [ "$l1" != "$l3" ]
ok $? "--seed 1: a different loss_D at the last logged step ($l1 vs $l3)"
! cmp -s "$TMP/m1" "$TMP/m3"
ok $? "--seed 1: different metrics"
! cmp -s "$TMP/run1/samples-epoch-001.png" "$TMP/run3/samples-epoch-001.png"
ok $? "--seed 1: a different sample grid"

# Two threads: the pool cuts each sgemm, unary op and Adam update at places set by the
# thread count alone, so two runs agree bit for bit as well.
gan --out "$TMP/t2a" --threads 2
is "$RC" 0 "a run on 2 threads exits 0"
gan --out "$TMP/t2b" --threads 2
is "$RC" 0 "a second run on 2 threads exits 0"
strip_seconds "$TMP/t2a/metrics.jsonl" >"$TMP/t2a.m"
strip_seconds "$TMP/t2b/metrics.jsonl" >"$TMP/t2b.m"
cmp -s "$TMP/t2a.m" "$TMP/t2b.m"
ok $? "2 threads, the same seed: identical metrics"
cmp -s "$TMP/t2a/samples-epoch-001.png" "$TMP/t2b/samples-epoch-001.png"
ok $? "2 threads, the same seed: identical sample grids"

# The other backend (the default is oneDNN when built in): on 2 threads too, each run
# the same bits as the last; the two backends round differently.
gan --out "$TMP/blas-a" --threads 2 --backend openblas
is "$RC" 0 "--backend openblas: a run on 2 threads exits 0"
gan --out "$TMP/blas-b" --threads 2 --backend openblas
is "$RC" 0 "--backend openblas: a second run exits 0"
strip_seconds "$TMP/blas-a/metrics.jsonl" >"$TMP/blas-a.m"
strip_seconds "$TMP/blas-b/metrics.jsonl" >"$TMP/blas-b.m"
cmp -s "$TMP/blas-a.m" "$TMP/blas-b.m"
ok $? "--backend openblas, 2 threads, the same seed: identical metrics"
cmp -s "$TMP/blas-a/samples-epoch-001.png" "$TMP/blas-b/samples-epoch-001.png"
ok $? "--backend openblas, 2 threads, the same seed: identical sample grids"

# The test split is evaluated a batch per thread, each batch with noise of its own: the
# figures do not depend on the thread count at all.
for t in 1 2 3; do
    run eval specs/gan.yaml --checkpoint "$TMP/run1" --json --threads $t
    is "$RC" 0 "eval on $t thread(s) exits 0"
    cp "$OUT" "$TMP/eval$t"
done
grep -q '"test_loss_D":' "$TMP/eval1" && cmp -s "$TMP/eval1" "$TMP/eval2" && cmp -s "$TMP/eval1" "$TMP/eval3"
ok $? "eval: the same figures, bit for bit, on 1, 2 and 3 threads"
if ! cmp -s "$TMP/eval1" "$TMP/eval2"; then diag "$(cat "$TMP/eval1" "$TMP/eval2")"; fi

done_testing
