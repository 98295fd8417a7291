#!/bin/sh
# The run report: every run leaves report.html, run.json and spec.yaml; `aigc-run report`
# builds it again and overlays runs; 100,000 logged steps make a small page that keeps
# a spike; and in a real browser (Chromium, when installed) the page runs its script
# without a console error and draws its curves.
. "$(dirname "$0")/lib.sh"

# p) a short real run leaves its report
run tests/specs/tiny-ae.yaml --epochs 2 --out "$TMP/a" --progress lines
is "$RC" 0 "two epochs of tiny-ae exit 0"
for f in report.html run.json spec.yaml; do
    [ -s "$TMP/a/$f" ]
    ok $? "the run leaves $f"
done
cmp -s tests/specs/tiny-ae.yaml "$TMP/a/spec.yaml"
ok $? "spec.yaml is the spec's text"
like "$(cat "$TMP/a/run.json")" '{"spec":"tiny-ae","spec_path":"tests/specs/tiny-ae.yaml","command":"* tests/specs/tiny-ae.yaml --epochs 2 --out *","commit":"*","threads":1,"epoch":2,"epochs":2,"step":282,*"checkpoint":"last.safetensors"}' \
    "run.json holds the spec, the command, the commit, threads, epoch and step, and the checkpoint"
H=$TMP/a/report.html
grep -q '<figcaption>loss ' "$H"
ok $? "the report has a chart of the logged loss"
is "$(grep -o '<polyline class="te"' "$H" | wc -l | tr -d ' ')" 2 "the chart has the test means, on a linear and a log axis"
grep -q 'src="http\|src="//\|href="http' "$H"
ok $((1 - $?)) "the page loads nothing from the network"

# p) a run with sample sections: each section's grids behind a slider
run specs/vae.yaml --epochs 2 --out "$TMP/b" --progress lines --set data.batch=128
is "$RC" 0 "two epochs of the VAE exit 0"
sections=$(ls "$TMP/b" | grep -c -- '-epoch-001\.png$')
is "$(grep -o 'data:image/png;base64,' "$TMP/b/report.html" | wc -l | tr -d ' ')" $((2 * sections)) \
    "the two epochs' grids of its $sections sections are embedded"
is "$(grep -o '<div class="grids">' "$TMP/b/report.html" | wc -l | tr -d ' ')" "$sections" "a slider per section"

# p) report rebuilds it, and overlays runs
rm "$TMP/a/report.html"
run report "$TMP/a"
is "$RC" 0 "report DIR exits 0"
is "$(cat "$OUT")" "$TMP/a/report.html" "and prints the page it wrote"
[ -s "$TMP/a/report.html" ]
ok $? "report DIR writes DIR/report.html again"
run report "$TMP/a" "$TMP/b" -o "$TMP/both.html"
is "$RC" 0 "report DIR1 DIR2 -o FILE exits 0"
grep -q 'stroke="#1f77b4"' "$TMP/both.html" && grep -q 'stroke="#d62728"' "$TMP/both.html"
ok $? "the two runs' curves are overlaid in two colours"
grep -q '<figcaption>loss_per_image ' "$TMP/both.html"
ok $? "each run's logged values have their charts"
expect_error 1 "$TMP/none/metrics.jsonl: cannot read the run's metrics: No such file or directory" report "$TMP/none"
expect_error 2 "aigc-run: report needs a run directory, like runs/gan" report
expect_error 2 "aigc-run: report takes run directories and -o FILE, not '--json'" report "$TMP/a" --json

# p) 100,000 logged steps: a small page that keeps the spike at step 77,777
mkdir -p "$TMP/big"
awk 'BEGIN {
    for (s = 1; s <= 100000; s++)
        printf "{\"kind\":\"step\",\"epoch\":%d,\"step\":%d,\"seconds\":%.3f,\"loss\":%.6g}\n",
            int((s - 1) / 10000) + 1, s, s * 0.01, s == 77777 ? 1e6 : 1 + 100 / s
    for (e = 1; e <= 10; e++)
        printf "{\"kind\":\"epoch\",\"epoch\":%d,\"step\":%d,\"seconds\":1,\"train_loss\":%.6g,\"test_loss\":%.6g}\n",
            e, e * 10000, 2 / e, 2.5 / e
}' > "$TMP/big/metrics.jsonl"
run report "$TMP/big"
is "$RC" 0 "a report of 100,000 steps"
size=$(wc -c < "$TMP/big/report.html")
[ "$size" -lt 300000 ]
ok $? "its page stays small: $size bytes"
most=$(grep -o 'class="st" stroke="[^"]*" points="[^"]*"' "$TMP/big/report.html" | awk '{n = gsub(/,/, ","); if (n > m) m = n} END {print m + 0}')
[ "$most" -le 1000 ] && [ "$most" -ge 500 ]
ok $? "each step curve is cut to at most 1,000 points ($most)"
grep -q '>1e+06</text>' "$TMP/big/report.html"
ok $? "the spike of 1e6 survives the cut: the log axis reaches it"

# p) in Chromium: the script runs without an error, and the curves are drawn
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "ok $((tap_count + 1)) # SKIP Chromium is not installed (apt-get install chromium)"
    tap_count=$((tap_count + 1))
else
    headless() { timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$TMP/chromium" "$@"; }
    headless --enable-logging=stderr --v=0 --dump-dom "file://$TMP/both.html" > "$TMP/dom.html" 2> "$TMP/console.log"
    grep -q 'data-ready="1"' "$TMP/dom.html"
    ok $? "Chromium runs the page's script to its end"
    grep -i 'CONSOLE\|Uncaught' "$TMP/console.log" > "$TMP/errors.log"
    [ ! -s "$TMP/errors.log" ]
    ok $? "with no console message"
    [ -s "$TMP/errors.log" ] && diag "$(head -5 "$TMP/errors.log")"
    is "$(grep -o '<output>2</output>' "$TMP/dom.html" | wc -l | tr -d ' ')" "$sections" \
        "each slider shows the last epoch's grid"
    # A blank page's screenshot compresses to almost nothing; curves and text do not.
    printf '<!doctype html><title>blank</title>' > "$TMP/blank.html"
    headless --window-size=1200,700 --screenshot="$TMP/blank.png" "file://$TMP/blank.html" > /dev/null 2>&1
    headless --window-size=1200,700 --screenshot="$TMP/shot.png" "file://$TMP/both.html" > /dev/null 2>&1
    blank=$(wc -c < "$TMP/blank.png")
    shot=$(wc -c < "$TMP/shot.png")
    [ "$shot" -gt $((blank * 8)) ]
    ok $? "the screenshot shows the curves: $shot bytes against a blank page's $blank"
fi

done_testing
