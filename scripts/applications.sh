#!/bin/sh
# applications.sh — the figures of docs/applications.md (`make applications`): trains
# the application specs under --root where they are not trained yet, measures them, draws
# their pictures into --img, and rewrites each application's measured block of the page.
#
#   scripts/applications.sh [--root DIR] [--seed N] [--threads N] [--parts LIST]
#                           [--doc FILE] [--img DIR] [--no-build] [--no-train]
#                           [--report-only]
#
#   --root DIR     where the runs go (default runs/applications: DIR/NAME, logs in DIR/logs)
#   --seed N       the seed of every run and measurement (default 0)
#   --threads N    threads (default 1); the numbers reproduce at the same count
#   --parts LIST   which applications, of: cfg style (default all)
#   --doc FILE     the page to rewrite (default docs/applications.md); "-" writes none
#   --img DIR      where the pictures go (default docs/img/applications)
#   --no-build     do not run make first
#   --no-train     train nothing: measure the runs in DIR as far as they got
#   --report-only  train and measure nothing: write the page from the results in DIR
#
# A run directory that holds a checkpoint is continued with --resume: a finished run is
# left as it is (aigc-run says "nothing to train"), an interrupted one trains on. So a
# second `make applications` only measures again what changed: a measurement is
# redone when a checkpoint it reads is newer than its result.
#
# Each application is a function part_NAME: it trains what it needs (train), measures
# (measure, evaluate), draws (draw), and writes its block to DIR/NAME.md. In FILE, the
# block replaces the lines between the marker lines
#     <!-- applications.sh NAME -->
#     <!-- /applications.sh NAME -->
# and the rest of the page is kept. A new application is a function, its name in PARTS,
# and its pair of markers in the page. Environment: AIGC_RUN (default ./aigc-run),
# FASHION (default /usr/share/datasets/fashion-mnist).
set -eu

PARTS="cfg style"
root=runs/applications
seed=0
threads=1
parts=$PARTS
doc=docs/applications.md
img=docs/img/applications
build=1
train=1
measure=1
while [ $# -gt 0 ]; do
    case $1 in
    --root) root=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --parts) parts=$2; shift 2 ;;
    --doc) doc=$2; shift 2 ;;
    --img) img=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-train) train=0; shift ;;
    --report-only) train=0 measure=0 build=0; shift ;;
    -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "applications.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case $root in '' | /) echo "applications.sh: --root must name a directory" >&2; exit 2 ;; esac
for p in $parts; do
    case " $PARTS " in
    *" $p "*) ;;
    *) echo "applications.sh: unknown part '$p' (of: $PARTS)" >&2; exit 2 ;;
    esac
done

AIGC_RUN=${AIGC_RUN:-./aigc-run}
FASHION=${FASHION:-/usr/share/datasets/fashion-mnist}

if [ "$build" = 1 ]; then ${MAKE:-make} aigc-run >/dev/null; fi
[ -x "$AIGC_RUN" ] || { echo "applications.sh: $AIGC_RUN is missing (run make)" >&2; exit 1; }
if [ "$doc" != - ]; then
    for p in $parts; do
        if ! grep -qxF "<!-- applications.sh $p -->" "$doc" || ! grep -qxF "<!-- /applications.sh $p -->" "$doc"; then
            echo "applications.sh: $doc lacks the marker lines of part '$p':
<!-- applications.sh $p -->
<!-- /applications.sh $p -->" >&2
            exit 1
        fi
    done
fi
mkdir -p "$root/logs" "$img"

# ------------------------------------------------------------------ helpers --

# fmt PRECISION VALUE: fixed decimals, so that equal numbers print byte-for-byte equal.
fmt() { awk -v p="$1" -v v="$2" 'BEGIN { printf "%." p "f", v }'; }
# count N: an integer with thousands separators, 10,000.
count() { awk -v v="$1" 'BEGIN { s = sprintf("%d", v); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); print s }'; }
# field FILE KEY: a scalar of the one-line JSON object in FILE.
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
# epochs_done NAME: the last epoch that run NAME finished.
epochs_done() { sed -n 's/.*"kind":"epoch","epoch":\([0-9]*\),.*/\1/p' "$root/$1/metrics.jsonl" | tail -1; }
# epochs_of SPEC: the epochs the spec asks for.
epochs_of() { sed -n 's/^  epochs: *\([0-9]*\).*/\1/p' "$1" | head -1; }
# fresh RESULT INPUT...: RESULT exists and is newer than every INPUT.
fresh() {
    r=$1
    shift
    [ -f "$r" ] || return 1
    for i in "$@"; do
        [ -n "$(find "$r" -newer "$i")" ] || return 1
    done
}
have_fashion() { [ -e "$FASHION/train-images-idx3-ubyte.gz" ] || [ -e "$FASHION/train-images-idx3-ubyte" ]; }

# train NAME SPEC [--set ...]: run NAME in $root/NAME, continued if it has a checkpoint.
train() {
    [ "$train" = 1 ] || return 0
    name=$1 spec=$2
    shift 2
    dir=$root/$name
    resume=
    [ -f "$dir/last.safetensors" ] && resume=--resume
    echo "applications: training $spec in $dir${resume:+ with --resume}"
    "$AIGC_RUN" "$spec" $resume --seed "$seed" --threads "$threads" --progress lines --out "$dir" "$@" \
        >"$root/logs/$name.log" 2>&1 || {
        echo "applications.sh: training failed; see $root/logs/$name.log" >&2
        tail -5 "$root/logs/$name.log" >&2
        exit 1
    }
}

# evaluate NAME SPEC [--set ...]: $root/NAME.loss.json, the test split's losses.
evaluate() {
    name=$1 spec=$2
    shift 2
    [ "$measure" = 1 ] || return 0
    fresh "$root/$name.loss.json" "$root/$name/last.safetensors" && return 0
    "$AIGC_RUN" eval "$spec" --checkpoint "$root/$name" --seed "$seed" --threads "$threads" --json "$@" \
        >"$root/$name.loss.json"
}

# measure NAME SPEC SECTION CSPEC CNAME [--set ...]: $root/NAME.SECTION.quality.json, the
# section's samples measured by the classifier run CNAME (docs/quality.md).
measure() {
    name=$1 spec=$2 section=$3 cspec=$4 cname=$5
    shift 5
    out=$root/$name.$section.quality.json
    [ "$measure" = 1 ] || return 0
    fresh "$out" "$root/$name/last.safetensors" "$root/$cname/last.safetensors" && return 0
    echo "applications: measuring $name, section $section"
    "$AIGC_RUN" eval "$spec" --checkpoint "$root/$name" --section "$section" --seed "$seed" \
        --threads "$threads" --json --quality "$cspec:$root/$cname" "$@" >"$out.tmp"
    mv "$out.tmp" "$out"
}

# draw NAME SPEC SECTION FILE [--set ...]: the section's grid from run NAME as $img/FILE.
draw() {
    name=$1 spec=$2 section=$3 file=$4
    shift 4
    [ "$measure" = 1 ] || return 0
    fresh "$img/$file" "$root/$name/last.safetensors" && return 0
    "$AIGC_RUN" sample "$spec" --checkpoint "$root/$name" --section "$section" --seed "$seed" \
        --threads "$threads" -o "$img/$file" "$@" >/dev/null
}

# Where the page refers to the pictures from.
rel=$(dirname "$doc")
case $img in
"$rel"/*) imgref=${img#"$rel"/} ;;
*) imgref=$img ;;
esac

# block NAME LINE...: lines of part NAME's block.
block() {
    b=$root/$1.md
    shift
    printf '%s\n' "$@" >>"$b"
}

# -------------------------------------------------------------------- parts --

# Conditional diffusion: specs/ddpm-cond.yaml's samples at each guidance scale, measured
# with specs/classifier.yaml.
part_cfg() {
    train classifier specs/classifier.yaml
    train ddpm-cond specs/ddpm-cond.yaml
    evaluate classifier specs/classifier.yaml
    for w in 0 1 3; do
        measure ddpm-cond specs/ddpm-cond.yaml w$w specs/classifier.yaml classifier
        # five rows of the ten digits keep the picture small
        draw ddpm-cond specs/ddpm-cond.yaml w$w ddpm-cond-w$w.png --set sample.w$w.count=50 \
            --set sample.w$w.grid=5x10
    done
    : >"$root/cfg.md"
    done_=$(epochs_done ddpm-cond) all=$(epochs_of specs/ddpm-cond.yaml)
    q=$root/ddpm-cond.w0.quality.json
    acc=$(awk -v a="$(field "$root/classifier.loss.json" test_accuracy)" 'BEGIN { printf "%.2f", 100 * a }')
    block cfg "\`specs/ddpm-cond.yaml\` after $done_ of its $all epochs, measured with \`specs/classifier.yaml\`" \
        "after $(epochs_done classifier) epochs (test accuracy $acc%). Each row measures $(count "$(field "$q" samples)") images" \
        "drawn by one section (DDIM in 50 steps, the labels 0 to 9 in turn) against the" \
        "$(count "$(field "$q" reference)") test images, whose classifier score (\`test_score\`) is $(fmt 3 "$(field "$q" test_score)")." "" \
        "| section | w | Fréchet | score | coverage | hist_kl | histogram (0-9) |" \
        "|---|---|---|---|---|---|---|"
    for w in 0 1 3; do
        q=$root/ddpm-cond.w$w.quality.json
        hist=$(sed -n 's/.*"hist":\[\([^]]*\)\].*/\1/p' "$q" | tr ',' ' ')
        block cfg "| \`w$w\` | $w | $(fmt 2 "$(field "$q" frechet)") | $(fmt 3 "$(field "$q" score)") | $(fmt 1 "$(field "$q" coverage)") | $(fmt 3 "$(field "$q" hist_kl)") | $hist |"
    done
    block cfg "" "The first five rows of each grid (\`aigc-run sample specs/ddpm-cond.yaml --section wN\`" \
        "draws ten), a row of the ten digits per noise draw, the same noise at each scale:" "" \
        "| w = 0 | w = 1 | w = 3 |" "|---|---|---|" \
        "| ![w = 0]($imgref/ddpm-cond-w0.png) | ![w = 1]($imgref/ddpm-cond-w1.png) | ![w = 3]($imgref/ddpm-cond-w3.png) |"
}

# Style transfer: specs/cvae.yaml (and on Fashion-MNIST specs/cvae-fashion.yaml), the
# test split's loss and the style and prior grids.
part_style() {
    train cvae specs/cvae.yaml
    evaluate cvae specs/cvae.yaml
    draw cvae specs/cvae.yaml style cvae-style.png
    draw cvae specs/cvae.yaml prior cvae-prior.png --set sample.prior.count=50 --set sample.prior.grid=5x10
    fashion=0
    if have_fashion; then
        fashion=1
        train cvae-fashion specs/cvae-fashion.yaml --set data.path="$FASHION"
        evaluate cvae-fashion specs/cvae-fashion.yaml --set data.path="$FASHION"
        draw cvae-fashion specs/cvae-fashion.yaml style cvae-fashion-style.png --set data.path="$FASHION" \
            --set sample.style.count=6 --set sample.style.grid=6x11
    else
        echo "applications: no Fashion-MNIST in $FASHION: specs/cvae-fashion.yaml skipped" >&2
    fi
    : >"$root/style.md"
    block style "| spec | epochs | test loss per image (BCE-sum + KLD) |" "|---|---|---|" \
        "| \`specs/cvae.yaml\` | $(epochs_done cvae) | $(fmt 2 "$(field "$root/cvae.loss.json" test_loss_per_image)") |"
    if [ "$fashion" = 1 ]; then
        block style "| \`specs/cvae-fashion.yaml\` | $(epochs_done cvae-fashion) | $(fmt 2 "$(field "$root/cvae-fashion.loss.json" test_loss_per_image)") |"
    fi
    block style "" "The style grids (\`aigc-run sample SPEC --section style\`; on Fashion-MNIST its first" \
        "six rows): a row per test image, the image itself first, then its z decoded with each" \
        "label, 0 to 9:" "" \
        "![style transfer, MNIST]($imgref/cvae-style.png)" ""
    if [ "$fashion" = 1 ]; then
        block style "![style transfer, Fashion-MNIST]($imgref/cvae-fashion-style.png)" ""
    else
        block style "Not measured: no Fashion-MNIST in \`$FASHION\` (Debian package" \
            "\`dataset-fashion-mnist\`)." ""
    fi
    block style "The first five rows of \`specs/cvae.yaml\`'s prior grid (\`--section prior\`): z drawn from" \
        "N(0, I), each row the labels 0 to 9:" "" "![CVAE prior samples, MNIST]($imgref/cvae-prior.png)"
}

# -------------------------------------------------------------------- main --

for p in $parts; do "part_$p"; done

if [ "$doc" != - ]; then
    tmp=$doc.tmp.$$
    cp "$doc" "$tmp"
    for p in $parts; do
        awk -v b="<!-- applications.sh $p -->" -v e="<!-- /applications.sh $p -->" -v f="$root/$p.md" '
            $0 == b { print; print ""; while ((getline l < f) > 0) print l; print ""; skip = 1; next }
            $0 == e { skip = 0 }
            !skip { print }' "$tmp" >"$tmp.2"
        mv "$tmp.2" "$tmp"
    done
    mv "$tmp" "$doc"
    echo "applications: wrote $doc ($parts; blocks also in $root/*.md)"
else
    echo "applications: wrote the blocks to $root/*.md ($parts)"
fi
