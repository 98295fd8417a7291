#!/bin/sh
# Sample quality (docs/quality.md): specs/classifier.yaml trains and reports its test
# accuracy; `eval --quality` measures a VAE's samples, the test split's own images and
# pure noise with it, and orders them as it should.
. "$(dirname "$0")/lib.sh"

# The JSON field NAME of the one-line object in FILE.
field() {
    sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"
}

# q) one epoch of the classifier: with seed 0 it reaches 93.4% (97-98% after five);
# 90% leaves room for a change in the ops' rounding, and still fails a broken
# classifier (chance is 10%).
C=$TMP/classifier
run specs/classifier.yaml --epochs 1 --out "$C" --progress lines
exits_0 "one epoch of specs/classifier.yaml exits 0"
acc=$(json_field "$C/metrics.jsonl" epoch 1 test_accuracy)
is_number "$acc"
ok $? "the epoch row has test_accuracy ($acc)"
less 0.90 "$acc"
ok $? "test accuracy after one epoch is above 90%: $acc"
grep -q "test_accuracy $(printf '%.4f' "$acc")" "$OUT"
ok $? "the epoch's summary line shows it"

run eval specs/classifier.yaml --checkpoint "$C"
is "$RC" 0 "eval of the classifier exits 0"
is "$(sed -n 's/^test_accuracy //p' "$OUT")" "$(printf '%.4f' "$acc")" "eval reports the same test accuracy"
run eval specs/classifier.yaml --checkpoint "$C" --json
is "$(field "$OUT" test_accuracy)" "$acc" "eval --json reports it as test_accuracy"

# q) a VAE after two epochs, measured on 1,000 samples
V=$TMP/vae
run specs/vae.yaml --epochs 2 --out "$V" --progress lines
is "$RC" 0 "two epochs of the VAE exit 0"
run eval specs/vae.yaml --checkpoint "$V"
grep -q test_accuracy "$OUT"
ok $((!$?)) "a VAE (no logits) reports no accuracy"

run eval specs/vae.yaml --checkpoint "$V" --quality "specs/classifier.yaml:$C" --json
exits_0 "eval --quality exits 0"
Q=$TMP/vae.json
cp "$OUT" "$Q"
cmp -s "$OUT" "$V/quality.json"
ok $? "eval --quality keeps its figures beside the run's weights, in quality.json"
run report "$V"
grep -q '<h3>eval --quality</h3>' "$V/report.html" && grep -q '<td>frechet</td>' "$V/report.html"
ok $? "and the run's report shows them"
is "$(field "$Q" samples)" 1000 "1,000 samples by default (the test split's size)"
fd_vae=$(field "$Q" frechet)
is_number "$fd_vae" && less 0 "$fd_vae"
ok $? "a finite, positive Fréchet distance ($fd_vae)"
score=$(field "$Q" score)
is_number "$score" && ! less "$score" 1 && ! less 10 "$score"
ok $? "a classifier score in [1, 10] ($score)"
hist=$(sed -n 's/.*"hist":\[\([^]]*\)\].*/\1/p' "$Q")
is "$(printf '%s\n' "$hist" | awk -F, '{ s = 0; for (k = 1; k <= NF; k++) s += $k; print NF, s }')" "10 1000" \
    "the histogram has 10 classes and sums to 1,000"

run eval specs/vae.yaml --checkpoint "$V" --quality "specs/classifier.yaml:$C" -n 300
is "$RC" 0 "eval --quality -n 300 exits 0 (text)"
is "$(sed -n 's/^samples //p' "$OUT")" 300 "-n sets how many are measured"
is "$(sed -n 's/^hist //p' "$OUT" | awk '{ s = 0; for (k = 1; k <= NF; k++) s += $k; print s }')" 300 \
    "the text histogram sums to 300"
# The classifier's weights named as --checkpoint names them: its .state stands for its
# .safetensors (ck_weights_path).
run eval specs/vae.yaml --checkpoint "$V" --quality "specs/classifier.yaml:$C/last.state" -n 300
is "$(sed -n 's/^hist //p' "$OUT" | awk '{ s = 0; for (k = 1; k <= NF; k++) s += $k; print s }')" 300 \
    "--quality CSPEC:DIR/last.state measures with DIR's weights"

# q) known images: the whole test split is at distance 0 from itself; its first 250
# images are near it, the VAE's samples further, uniform noise far away.
P=$TMP/probe
run tests/specs/quality-probe.yaml --out "$P" --progress lines
is "$RC" 0 "the probe spec trains"
run eval tests/specs/quality-probe.yaml --checkpoint "$P" --quality "specs/classifier.yaml:$C" --section real --json
less "$(field "$OUT" frechet)" 0.001
ok $? "the test split measured against itself: Fréchet distance $(field "$OUT" frechet)"
awk -v a="$(field "$OUT" score)" -v b="$(field "$OUT" test_score)" 'BEGIN { d = a - b; exit !(d * d < 1e-10) }'
ok $? "... and the test split's own classifier score (batches may round differently)"
for s in real noise; do
    run eval tests/specs/quality-probe.yaml --checkpoint "$P" --quality "specs/classifier.yaml:$C" \
        --section $s -n 250 --json
    is "$RC" 0 "eval --quality --section $s exits 0"
    cp "$OUT" "$TMP/$s.json"
done
fd_real=$(field "$TMP/real.json" frechet)
fd_noise=$(field "$TMP/noise.json" frechet)
less "$fd_real" "$fd_vae" && less "$fd_vae" "$fd_noise"
ok $? "Fréchet distance: test images $fd_real < VAE $fd_vae < noise $fd_noise"
less "$(field "$TMP/noise.json" score)" "$(field "$TMP/real.json" score)"
ok $? "the test images score higher than noise"
is "$(field "$TMP/real.json" coverage)" 1 "the test images cover every class"

# q) errors
expect_error 2 "aigc-run: --quality takes a classifier spec (.yaml), optionally :WEIGHTS, not 'runs/classifier'" \
    eval specs/vae.yaml --checkpoint "$V" --quality runs/classifier
expect_error 2 "aigc-run: --quality is for eval" sample specs/vae.yaml --checkpoint "$V" --quality specs/classifier.yaml
expect_error 1 "tests/specs/quality-probe.yaml:12:7: a classifier's step must name its logits [B, 10]: logits, features = C(x)" \
    eval specs/vae.yaml --checkpoint "$V" --quality "tests/specs/quality-probe.yaml:$P"
# Errors in the classifier spec quote its line, with a caret, like any spec error, and
# once, even when it is the main spec too.
sed 's/relu(linear(/relu(lienar(/' specs/classifier.yaml >"$TMP/typo.yaml"
run eval specs/vae.yaml --checkpoint "$V" --quality "$TMP/typo.yaml"
is "$(cat "$ERR")" "$TMP/typo.yaml:25:22: unknown function or model 'lienar'; did you mean 'linear'?
  25 |       features: relu(lienar(flatten(c2), 128))
     |                      ^" "an error in the classifier spec: its line and a caret"
is "$RC" 1 "... exit 1"
run eval tests/specs/quality-probe.yaml --checkpoint "$P" --quality "tests/specs/quality-probe.yaml:$P"
is "$(cat "$ERR")" "tests/specs/quality-probe.yaml:12:7: a classifier's step must name its logits [B, 10]: logits, features = C(x)
  12 |     - loss = mean(M(x))
     |       ^" "the main spec as the classifier: its line quoted once"
run eval specs/vae.yaml --checkpoint "$V" --quality "specs/classifier.yaml:$TMP/none"
is "$ERR1" "the classifier's weights: $TMP/none: cannot open: No such file or directory" \
    "missing classifier weights, given: the file named"
is "$RC" 1 "missing classifier weights exit 1"
mkdir -p "$TMP/elsewhere"
(cd "$TMP/elsewhere" && ln -s "$ROOT/data" data && "$AIGC_RUN" eval "$ROOT/specs/vae.yaml" --checkpoint "$V" \
    --quality "$ROOT/specs/classifier.yaml" >"$OUT" 2>"$ERR")
is "$(sed -n 1p "$ERR")" "the classifier's weights: runs/classifier/last.safetensors: cannot open: No such file or directory (train it first: aigc-run $ROOT/specs/classifier.yaml)" \
    "missing classifier weights, by default: how to make them"

done_testing
