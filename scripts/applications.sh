#!/bin/sh
# applications.sh — the figures of docs/applications.md (`make applications`): trains
# the application specs under --root where they are not trained yet, measures them, draws
# their pictures into --img, and rewrites each application's measured block of the page.
# Generated data sets and encoded features go to DIR/gen/NAME and DIR/NAME-SECTION.
#
#   scripts/applications.sh [--root DIR] [--seed N] [--threads N] [--parts LIST]
#                           [--doc FILE] [--img DIR] [--no-build] [--no-train]
#                           [--report-only]
#
#   --root DIR     where the runs go (default runs/applications: DIR/NAME, logs in DIR/logs)
#   --seed N       the seed of every run and measurement (default 0)
#   --threads N    threads (default 1); the numbers reproduce at the same count
#   --parts LIST   which applications, of: cfg style cas probe gan (default all)
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

PARTS="cfg style cas probe gan"
# The Classification Accuracy Score's training set: as many images as the real one.
CAS_N=9000
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
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
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

# generate NAME SPEC SECTION: $root/gen/NAME, CAS_N images and their labels drawn by
# the section of run NAME (sample --format idx).
generate() {
    name=$1 spec=$2 section=$3
    dir=$root/gen/$name
    [ "$measure" = 1 ] || return 0
    fresh "$dir/train-labels-idx1-ubyte" "$root/$name/last.safetensors" && return 0
    echo "applications: generating $CAS_N images from $name, section $section"
    "$AIGC_RUN" sample "$spec" --checkpoint "$root/$name" --section "$section" --seed "$seed" \
        --threads "$threads" -n "$CAS_N" --format idx -o "$dir" >/dev/null
}

# encode NAME SPEC SECTION: $root/NAME-SECTION, the features section over both splits of
# run NAME, and its summary line in $root/NAME-SECTION.txt.
encode() {
    name=$1 spec=$2 section=$3
    dir=$root/$name-$section
    [ "$measure" = 1 ] || return 0
    fresh "$dir/t10k-labels-idx1-ubyte" "$root/$name/last.safetensors" && return 0
    echo "applications: encoding $name, section $section"
    "$AIGC_RUN" encode "$spec" --checkpoint "$root/$name" --section "$section" --seed "$seed" \
        --threads "$threads" -o "$dir" >/dev/null 2>"$dir.txt.tmp"
    mv "$dir.txt.tmp" "$dir.txt"
}

# retrain NAME INPUT: forget run NAME when INPUT, the data it was trained on, is newer.
retrain() {
    [ "$train" = 1 ] || return 0
    [ -f "$root/$1/last.safetensors" ] || return 0
    fresh "$root/$1/last.safetensors" "$2" && return 0
    echo "applications: $2 changed: training $root/$1 again"
    rm -rf "${root:?}/$1"
}

# percent FRACTION: 0.9720 as 97.20.
percent() { awk -v a="$1" 'BEGIN { printf "%.2f", 100 * a }'; }

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
    acc=$(percent "$(field "$root/classifier.loss.json" test_accuracy)")
    block cfg "\`specs/ddpm-cond.yaml\` after $done_ of its $all epochs, measured with \`specs/classifier.yaml\`" \
        "after $(epochs_done classifier) epochs (test accuracy $acc%). Each row measures $(count "$(field "$q" samples)") images" \
        "drawn by one section (DDIM in 50 steps, the labels 0 to 9 in turn) against the" \
        "$(count "$(field "$q" reference)") test images, whose classifier score (\`test_score\`) is $(fmt 3 "$(field "$q" test_score)")." \
        "class_match is the share of the images the classifier sees as the digit they were asked for." "" \
        "| section | w | class_match | Fréchet | score | coverage | hist_kl | histogram (0-9) |" \
        "|---|---|---|---|---|---|---|---|"
    for w in 0 1 3; do
        q=$root/ddpm-cond.w$w.quality.json
        hist=$(sed -n 's/.*"hist":\[\([^]]*\)\].*/\1/p' "$q" | tr ',' ' ')
        block cfg "| \`w$w\` | $w | $(percent "$(field "$q" class_match)")% | $(fmt 2 "$(field "$q" frechet)") | $(fmt 3 "$(field "$q" score)") | $(fmt 1 "$(field "$q" coverage)") | $(fmt 3 "$(field "$q" hist_kl)") | $hist |"
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

# Data generation: the Classification Accuracy Score (Ravuri & Vinyals, 2019).
# specs/classifier.yaml trained on CAS_N images of each conditional model, labelled with
# the digits they were asked for, and tested on the real test split, beside the same
# classifier trained on the real training split.
part_cas() {
    train classifier specs/classifier.yaml
    train cgan specs/cgan.yaml
    train cvae specs/cvae.yaml
    train ddpm-cond specs/ddpm-cond.yaml
    evaluate classifier specs/classifier.yaml
    # The generator, its section, and what the page says that section is.
    set -- cgan specs/cgan.yaml sample "\`specs/cgan.yaml\`'s samples" \
        cvae specs/cvae.yaml prior "\`specs/cvae.yaml\`'s \`prior\`: z from N(0, I)" \
        ddpm-cond specs/ddpm-cond.yaml cas "\`specs/ddpm-cond.yaml\`'s \`cas\`: w = 0, DDIM in 20 steps"
    : >"$root/cas.md"
    block cas "| training data | images | class_match | Fréchet | CAS: test accuracy on the real test split |" \
        "|---|---|---|---|---|" \
        "| the real training split (\`data/mnist\`) | $(count 9000) | | | $(percent "$(field "$root/classifier.loss.json" test_accuracy)")% |"
    while [ $# -gt 0 ]; do
        g=$1 gspec=$2 gsection=$3 what=$4
        shift 4
        generate "$g" "$gspec" "$gsection"
        measure "$g" "$gspec" "$gsection" specs/classifier.yaml classifier
        retrain "cas-$g" "$root/gen/$g/train-labels-idx1-ubyte"
        train "cas-$g" specs/classifier.yaml --set data.path="$root/gen/$g" --set data.test_path=data/mnist
        evaluate "cas-$g" specs/classifier.yaml --set data.path="$root/gen/$g" --set data.test_path=data/mnist
        block cas "| $what | $(count "$CAS_N") | $(percent "$(field "$root/$g.$gsection.quality.json" class_match)")% | $(fmt 2 "$(field "$root/$g.$gsection.quality.json" frechet)") | $(percent "$(field "$root/cas-$g.loss.json" test_accuracy)")% |"
    done
    block cas "" "Each classifier trains $(epochs_done cas-cgan) epochs with seed $seed, as \`specs/classifier.yaml\` does. class_match" \
        "(docs/quality.md) is the share of the section's first $(count "$(field "$root/cgan.sample.quality.json" samples)") images (\`eval --quality\` draws them" \
        "as \`sample --format idx\` does) that the classifier trained on real data sees as the digit" \
        "they were asked for; Fréchet is the distance of those images from the test images (docs/quality.md). Ten" "images of each section, asked for the digits 0 to 9:" "" \
        "| spec | the digits 0 to 9 |" "|---|---|" \
        "| \`specs/cgan.yaml\` | ![cgan]($imgref/cas-cgan.png) |" \
        "| \`specs/cvae.yaml\` | ![cvae]($imgref/cas-cvae.png) |" \
        "| \`specs/ddpm-cond.yaml\` | ![ddpm-cond]($imgref/cas-ddpm-cond.png) |"
    draw cgan specs/cgan.yaml sample cas-cgan.png --set sample.count=10 --set sample.grid=1x10
    draw cvae specs/cvae.yaml prior cas-cvae.png --set sample.prior.count=10 --set sample.prior.grid=1x10
    draw ddpm-cond specs/ddpm-cond.yaml cas cas-ddpm-cond.png --set sample.cas.count=10 --set sample.cas.grid=1x10
}

# Representation learning: the VAE's latent and the conditional VAE's, encoded over both
# splits, each read by specs/linear-probe.yaml; the scatters of their test split.
part_probe() {
    train vae specs/vae.yaml
    train cvae specs/cvae.yaml
    evaluate vae specs/vae.yaml
    evaluate cvae specs/cvae.yaml
    : >"$root/probe.md"
    block probe "| encoder | features | F | encoder's test loss per image | linear probe's test accuracy |" \
        "|---|---|---|---|---|"
    for e in vae:20 cvae:2; do
        enc=${e%:*} f=${e#*:}
        encode "$enc" "specs/$enc.yaml" latent
        retrain "probe-$enc" "$root/$enc-latent/train-features-idx2-float"
        train "probe-$enc" specs/linear-probe.yaml --set data.path="$root/$enc-latent" --set models.probe.in="$f"
        evaluate "probe-$enc" specs/linear-probe.yaml --set data.path="$root/$enc-latent" --set models.probe.in="$f"
        if [ "$measure" = 1 ] && ! fresh "$img/$enc-latent-scatter.png" "$root/$enc-latent/scatter.png"; then
            cp "$root/$enc-latent/scatter.png" "$img/$enc-latent-scatter.png"
        fi
        case $enc in
        vae) what="\`specs/vae.yaml\` after $(epochs_done vae) epochs" how="mu of encoder(x)" ;;
        cvae) what="\`specs/cvae.yaml\` after $(epochs_done cvae) epochs" how="mu of encoder(x, one-hot label)" ;;
        esac
        block probe "| $what | $how | $f | $(fmt 2 "$(field "$root/$enc.loss.json" test_loss_per_image)") | $(percent "$(field "$root/probe-$enc.loss.json" test_accuracy)")% |"
    done
    block probe "" "The probe trains $(epochs_done probe-vae) epochs on the $(count 9000) training images' features and is tested on the" \
        "$(count 1000) test images'. The scatters (\`scatter.png\` of \`aigc-run encode\`) of the test split:" \
        "the VAE's first two principal components ($(sed -n 's/.*axes hold \(.*\) of the variance.*/\1/p' "$root/vae-latent.txt") of the variance), the" \
        "conditional VAE's two dimensions as they are." "" \
        "| \`specs/vae.yaml\`, \`--section latent\` | \`specs/cvae.yaml\`, \`--section latent\` |" "|---|---|" \
        "| ![the VAE's latent]($imgref/vae-latent-scatter.png) | ![the conditional VAE's latent]($imgref/cvae-latent-scatter.png) |"
}

# A fuller GAN toolkit: specs/wgan.yaml and specs/sngan.yaml beside specs/gan.yaml,
# measured with specs/classifier.yaml; their grids.
part_gan() {
    train classifier specs/classifier.yaml
    evaluate classifier specs/classifier.yaml
    : >"$root/gan.md"
    block gan "| spec | loss and training | epochs | Fréchet | score | coverage | hist_kl |" "|---|---|---|---|---|---|---|"
    for g in gan wgan sngan; do
        train "$g" "specs/$g.yaml"
        measure "$g" "specs/$g.yaml" sample specs/classifier.yaml classifier
        draw "$g" "specs/$g.yaml" sample "$g.png"
        case $g in
        gan) how="BCE; Adam 2e-4, betas (0.5, 0.999)" ;;
        wgan) how="Wasserstein; RMSprop 5e-5, the critic's weights clipped to 0.01, G updated every 5th step" ;;
        sngan) how="hinge for D, -mean(D(fake)) for G; spectral norm on D's layers; Adam 2e-4, betas (0, 0.9)" ;;
        esac
        q=$root/$g.sample.quality.json
        block gan "| \`specs/$g.yaml\` | $how | $(epochs_done "$g") | $(fmt 2 "$(field "$q" frechet)") | $(fmt 3 "$(field "$q" score)") | $(fmt 1 "$(field "$q" coverage)") | $(fmt 3 "$(field "$q" hist_kl)") |"
    done
    q=$root/gan.sample.quality.json
    block gan "" "Each row measures $(count "$(field "$q" samples)") samples against the $(count "$(field "$q" reference)") test images (\`test_score\`" \
        "$(fmt 3 "$(field "$q" test_score)")) with \`specs/classifier.yaml\`. Each run's grid (\`aigc-run sample SPEC\`, 64 samples):" "" \
        "| \`specs/gan.yaml\` | \`specs/wgan.yaml\` | \`specs/sngan.yaml\` |" "|---|---|---|" \
        "| ![gan]($imgref/gan.png) | ![wgan]($imgref/wgan.png) | ![sngan]($imgref/sngan.png) |"
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
