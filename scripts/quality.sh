#!/bin/sh
# quality.sh — the quality report of docs/quality.md (`make quality`): trains each
# family's spec for a stated budget on the embedded MNIST subset and on Fashion-MNIST,
# measures it with `aigc-run eval` (the test split's losses) and `aigc-run eval
# --quality` (Fréchet distance, classifier score, class histogram, against a classifier
# trained here too), and rewrites the measured part of docs/quality.md with the numbers
# and the last sample grid of each spec (docs/img/quality/).
#
#   scripts/quality.sh [--root DIR] [--seed N] [--threads N] [--backend B]
#                      [--sets "mnist fashion"] [--doc FILE] [--img DIR] [--no-build]
#                      [--report-only]
#
#   --root DIR     where the runs go (default runs/quality: DIR/SET/NAME, logs in DIR/logs)
#   --seed N       the seed of every run and measurement (default 0)
#   --threads N    threads (default 1); the numbers reproduce at the same count
#   --backend B    the compute backend, onednn or openblas (default: AIGC_BACKEND, else
#                  the build's); the numbers reproduce on the same backend (the two
#                  round differently)
#   --sets LIST    which data sets, of mnist and fashion (default both)
#   --doc FILE     the report to rewrite (default docs/quality.md); "-" writes none
#   --img DIR      where the sample grids go (default docs/img/quality)
#   --no-build     do not run make first
#   --report-only  train and measure nothing: write the report from the runs in DIR
#
# Everything in FILE after the marker line (MARKER below) is replaced; the text before
# it is kept. The generated part is also written to DIR/report.md, so that two runs
# compare with `diff runs/quality/report.md OTHER/report.md`. Wall times go to
# DIR/timings.txt, not into the report. Environment: AIGC_RUN (default ./aigc-run),
# FASHION (default /usr/share/datasets/fashion-mnist).
set -eu

root=runs/quality
seed=0
threads=1
backend=${AIGC_BACKEND:-}
sets="mnist fashion"
doc=docs/quality.md
img=docs/img/quality
build=1
runs=1
while [ $# -gt 0 ]; do
    case $1 in
    --root) root=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    --sets) sets=$2; shift 2 ;;
    --doc) doc=$2; shift 2 ;;
    --img) img=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --report-only) runs=0 build=0; shift ;;
    -h | --help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "quality.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case $root in '' | /) echo "quality.sh: --root must name a directory" >&2; exit 2 ;; esac

AIGC_RUN=${AIGC_RUN:-./aigc-run}
FASHION=${FASHION:-/usr/share/datasets/fashion-mnist}
MARKER='<!-- Everything below is written by scripts/quality.sh (make quality): edit the script, not this. -->'

# The budgets, in epochs. MNIST: the classifier's, the GAN's and the VAE's own; MADE is
# cut from its 20 to 10 to keep the run short (its test NLL still falls there, by about
# 3.5 nats an epoch: the row is not MADE's best). Fashion-MNIST has 60,000 training
# images, 6.7 times the subset: 10 GAN epochs are 9,380 updates, twice the 4,230 of the
# 30 MNIST ones; the VAE and the classifier get their specs' own. The DDPM is cut from its
# 15 to 10 (1,410 updates), its samples drawn by the spec's first section (DDIM, 50 steps).
MNIST_CLASSIFIER=8 MNIST_GAN=30 MNIST_VAE=10 MNIST_MADE=10 MNIST_DDPM=10
FASHION_CLASSIFIER=5 FASHION_VAE=10 FASHION_GAN=10

if [ "$build" = 1 ]; then ${MAKE:-make} aigc-run >/dev/null; fi
[ -x "$AIGC_RUN" ] || { echo "quality.sh: $AIGC_RUN is missing (run make)" >&2; exit 1; }
# The backend, named in the report: the build's default is oneDNN where it has it.
if [ -z "$backend" ]; then
    backend=openblas
    "$AIGC_RUN" check specs/gan.yaml --backend onednn >/dev/null 2>&1 && backend=onednn
fi
export AIGC_BACKEND="$backend"
if [ "$doc" != - ]; then
    grep -qxF "$MARKER" "$doc" || { echo "quality.sh: $doc has no marker line:
$MARKER" >&2; exit 1; }
fi
mkdir -p "$root/logs"
[ "$runs" = 0 ] || : >"$root/timings.txt"
report=$root/report.md
: >"$report"
out() { printf '%s\n' "$@" >>"$report"; }

# fmt PRECISION VALUE: fixed decimals, so that equal numbers print byte-for-byte equal.
fmt() { awk -v p="$1" -v v="$2" 'BEGIN { printf "%." p "f", v }'; }
# count N: an integer with thousands separators, 10,000.
count() { awk -v v="$1" 'BEGIN { s = sprintf("%d", v); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); print s }'; }
# field FILE KEY: a scalar of the one-line JSON object in FILE.
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
# losses FILE: its test_* values other than the accuracy and nats_per_image (the nll row's
# own value again), as "`name` 1.2345, ..."
losses() {
    tr ',{}' '\n' <"$1" | sed -n 's/^"test_\([A-Za-z_0-9]*\)":\(.*\)$/\1 \2/p' |
        awk '$1 != "accuracy" && $1 != "nats_per_image" { printf "%s`%s` %.4f", (n++ ? ", " : ""), $1, $2 }'
}

# train SET NAME SPEC EPOCHS [--set ...]: a fresh run in $root/SET/NAME.
train() {
    [ "$runs" = 1 ] || return 0
    set_=$1 name=$2 spec=$3 epochs=$4
    shift 4
    dir=$root/$set_/$name
    rm -rf "$dir"
    mkdir -p "$root/$set_"
    echo "quality: $set_: training $spec for $epochs epoch(s) into $dir"
    t0=$(date +%s)
    "$AIGC_RUN" "$spec" --epochs "$epochs" --seed "$seed" --threads "$threads" \
        --progress lines --out "$dir" "$@" >"$root/logs/$set_-$name.log" 2>&1 || {
        echo "quality.sh: training failed; see $root/logs/$set_-$name.log" >&2
        tail -5 "$root/logs/$set_-$name.log" >&2
        exit 1
    }
    echo "$set_ $name train $epochs epochs: $(($(date +%s) - t0)) s wall" >>"$root/timings.txt"
}

# evaluate SET NAME SPEC [--set ...]: $root/SET/NAME.loss.json (the test split's losses).
evaluate() {
    [ "$runs" = 1 ] || return 0
    set_=$1 name=$2 spec=$3
    shift 3
    "$AIGC_RUN" eval "$spec" --checkpoint "$root/$set_/$name" --seed "$seed" \
        --threads "$threads" --json "$@" >"$root/$set_/$name.loss.json"
}

# measure SET NAME SPEC CSPEC CNAME [--set ...]: $root/SET/NAME.quality.json.
measure() {
    [ "$runs" = 1 ] || return 0
    set_=$1 name=$2 spec=$3 cspec=$4 cname=$5
    shift 5
    echo "quality: $set_: measuring $name"
    t0=$(date +%s)
    "$AIGC_RUN" eval "$spec" --checkpoint "$root/$set_/$name" --seed "$seed" \
        --threads "$threads" --json --quality "$cspec:$root/$set_/$cname" "$@" \
        >"$root/$set_/$name.quality.json"
    echo "$set_ $name eval --quality: $(($(date +%s) - t0)) s wall" >>"$root/timings.txt"
}

# row SET NAME LABEL EPOCHS: a table row from NAME's JSON files (either may be absent).
row() {
    set_=$1 name=$2 label=$3 epochs=$4
    l=$root/$set_/$name.loss.json q=$root/$set_/$name.quality.json
    loss='' fr='' sc='' cov='' kl='' hist='' acc=''
    if [ -f "$l" ]; then
        loss=$(losses "$l")
        a=$(field "$l" test_accuracy)
        if [ -n "$a" ]; then acc="$(awk -v a="$a" 'BEGIN { printf "%.2f", 100 * a }')%"; fi
    fi
    if [ -f "$q" ]; then
        fr=$(fmt 2 "$(field "$q" frechet)")
        sc=$(fmt 3 "$(field "$q" score)")
        cov=$(fmt 1 "$(field "$q" coverage)")
        kl=$(fmt 3 "$(field "$q" hist_kl)")
        hist=$(sed -n 's/.*"hist":\[\([^]]*\)\].*/\1/p' "$q" | tr ',' ' ')
    fi
    out "| $label | $epochs | $loss | $fr | $sc | $cov | $kl | $acc | $hist |"
}

# grid SET NAME SPEC KEY [--set ...]: copy the run's last sample grid to $img/SET-NAME.png
# and print what it is. A grid over 30 KB (noisy samples compress badly) is redrawn from
# the final weights as 6x6 (KEY: the first section's grid, sample.grid or
# sample.SECTION.grid): the same seed, so the first 36 of the grid's draws.
grid() {
    set_=$1 name=$2 spec=$3 key=$4
    shift 4
    last=$(ls "$root/$set_/$name"/samples-epoch-*.png | tail -1)
    mkdir -p "$img"
    cp "$last" "$img/$set_-$name.png"
    if [ $(($(wc -c <"$last"))) -le 30000 ]; then
        printf '`%s`' "$(basename "$last")"
        return
    fi
    "$AIGC_RUN" sample "$spec" --checkpoint "$root/$set_/$name" --seed "$seed" \
        --threads "$threads" -n 36 --set "$key=6x6" -o "$img/$set_-$name.png" "$@" >/dev/null
    printf 'the first 36 draws of `%s`, redrawn by `aigc-run sample -n 36` as its 64 make a PNG over 30 KB' \
        "$(basename "$last")"
}

# reference SET CSPEC CNAME [--set ...]: the probe spec's real test images and uniform
# noise, measured like the models, to read the other rows against.
reference() {
    [ "$runs" = 1 ] || return 0
    set_=$1 cspec=$2 cname=$3
    shift 3
    train "$set_" probe tests/specs/quality-probe.yaml 1 "$@"
    for s in real noise; do
        "$AIGC_RUN" eval tests/specs/quality-probe.yaml --checkpoint "$root/$set_/probe" \
            --seed "$seed" --threads "$threads" --json --section $s "$@" \
            --quality "$cspec:$root/$set_/$cname" >"$root/$set_/probe-$s.quality.json"
    done
}

head_table() {
    out "| spec | epochs | test loss (the logged values: per image, nats for MADE, per pixel for the DDPM) | Fréchet | score | coverage | hist_kl | test accuracy | histogram (0-9) |"
    out "|---|---|---|---|---|---|---|---|---|"
}

targs=
[ "$threads" = 1 ] || targs=" --threads $threads"
targs="$targs --backend $backend"
sargs=
[ "$seed" = 0 ] || sargs=" --seed $seed"
args="$sargs$targs"
again="make quality QUALITY_ARGS=\"${args# }\""
out "Written by \`sh scripts/quality.sh$sargs$targs\`: seed $seed," \
    "$threads thread$([ "$threads" = 1 ] || echo s), the $backend backend. To reproduce: \`$again\`."

for set_ in $sets; do
    case $set_ in
    mnist)
        train mnist classifier specs/classifier.yaml $MNIST_CLASSIFIER
        train mnist gan specs/gan.yaml $MNIST_GAN
        train mnist vae specs/vae.yaml $MNIST_VAE
        train mnist made specs/made.yaml $MNIST_MADE
        train mnist ddpm specs/ddpm.yaml $MNIST_DDPM
        for n in classifier gan vae made ddpm; do evaluate mnist $n specs/$n.yaml; done
        for n in gan vae made ddpm; do measure mnist $n specs/$n.yaml specs/classifier.yaml classifier; done
        reference mnist specs/classifier.yaml classifier
        q=$root/mnist/probe-real.quality.json
        out "" "### The embedded MNIST subset" ""
        out "\`data/mnist\`: 9,000 training and 1,000 test images. The classifier is" \
            "\`specs/classifier.yaml\` after the epochs in its row; every other row measures" \
            "$(count "$(field "$q" samples)") images against the $(count "$(field "$q" reference)") test images," \
            "whose own classifier score (\`test_score\`) is $(fmt 3 "$(field "$q" test_score)")." ""
        head_table
        row mnist classifier "\`specs/classifier.yaml\`" $MNIST_CLASSIFIER
        row mnist gan "\`specs/gan.yaml\`" $MNIST_GAN
        row mnist vae "\`specs/vae.yaml\`, prior samples" $MNIST_VAE
        row mnist made "\`specs/made.yaml\`" $MNIST_MADE
        row mnist ddpm "\`specs/ddpm.yaml\`, DDIM 50 steps" $MNIST_DDPM
        row mnist probe-real "the test split itself" ""
        row mnist probe-noise "uniform noise" ""
        g1=$(grid mnist gan specs/gan.yaml sample.grid) g2=$(grid mnist vae specs/vae.yaml sample.prior.grid)
        g3=$(grid mnist made specs/made.yaml sample.grid) g4=$(grid mnist ddpm specs/ddpm.yaml sample.ddim.grid)
        out "" "The last sample grid of each run ($g1; $g2; $g3; $g4):" "" \
            "| \`specs/gan.yaml\` | \`specs/vae.yaml\` (prior) | \`specs/made.yaml\` | \`specs/ddpm.yaml\` (DDIM) |" \
            "|---|---|---|---|" \
            "| ![GAN samples, MNIST](img/quality/mnist-gan.png) | ![VAE samples, MNIST](img/quality/mnist-vae.png) | ![MADE samples, MNIST](img/quality/mnist-made.png) | ![DDPM samples, MNIST](img/quality/mnist-ddpm.png) |"
        ;;
    fashion)
        out "" "### Fashion-MNIST" ""
        if [ ! -e "$FASHION/train-images-idx3-ubyte.gz" ] && [ ! -e "$FASHION/train-images-idx3-ubyte" ]; then
            echo "quality: no Fashion-MNIST in $FASHION: skipped" >&2
            out "Not measured: no Fashion-MNIST in \`$FASHION\` (Debian package" \
                "\`dataset-fashion-mnist\`; \`sh scripts/install-deps.sh --with-data\`)."
            continue
        fi
        F="--set data.dataset=fashion-mnist --set data.path=$FASHION"
        train fashion classifier specs/classifier-fashion.yaml $FASHION_CLASSIFIER --set data.path="$FASHION"
        train fashion vae specs/vae-fashion.yaml $FASHION_VAE --set data.path="$FASHION"
        # shellcheck disable=SC2086 # $F is two options, split on purpose
        train fashion gan specs/gan.yaml $FASHION_GAN $F
        evaluate fashion classifier specs/classifier-fashion.yaml --set data.path="$FASHION"
        evaluate fashion vae specs/vae-fashion.yaml --set data.path="$FASHION"
        # shellcheck disable=SC2086
        evaluate fashion gan specs/gan.yaml $F
        measure fashion vae specs/vae-fashion.yaml specs/classifier-fashion.yaml classifier --set data.path="$FASHION"
        # shellcheck disable=SC2086
        measure fashion gan specs/gan.yaml specs/classifier-fashion.yaml classifier $F
        # shellcheck disable=SC2086
        reference fashion specs/classifier-fashion.yaml classifier $F
        q=$root/fashion/probe-real.quality.json
        out "60,000 training and 10,000 test images (classes 0-9: T-shirt, trouser, pullover," \
            "dress, coat, sandal, shirt, sneaker, bag, ankle boot). The classifier is" \
            "\`specs/classifier-fashion.yaml\`; the GAN is \`specs/gan.yaml\` with" \
            "\`--set data.dataset=fashion-mnist --set data.path=...\`. Every other row measures" \
            "$(count "$(field "$q" samples)") images against the $(count "$(field "$q" reference)") test images" \
            "(\`test_score\` $(fmt 3 "$(field "$q" test_score)")). A different classifier:" \
            "these distances do not compare with the MNIST ones." ""
        head_table
        row fashion classifier "\`specs/classifier-fashion.yaml\`" $FASHION_CLASSIFIER
        row fashion gan "\`specs/gan.yaml\` on Fashion-MNIST" $FASHION_GAN
        row fashion vae "\`specs/vae-fashion.yaml\`" $FASHION_VAE
        row fashion probe-real "the test split itself" ""
        row fashion probe-noise "uniform noise" ""
        # shellcheck disable=SC2086
        g1=$(grid fashion gan specs/gan.yaml sample.grid $F)
        g2=$(grid fashion vae specs/vae-fashion.yaml sample.grid --set data.path="$FASHION")
        out "" "The last sample grid of each run ($g1; $g2):" "" \
            "| \`specs/gan.yaml\` on Fashion-MNIST | \`specs/vae-fashion.yaml\` |" \
            "|---|---|" \
            "| ![GAN samples, Fashion-MNIST](img/quality/fashion-gan.png) | ![VAE samples, Fashion-MNIST](img/quality/fashion-vae.png) |"
        ;;
    *) echo "quality.sh: unknown data set '$set_' (mnist, fashion)" >&2; exit 2 ;;
    esac
done

if [ "$doc" != - ]; then
    tmp=$doc.tmp.$$
    awk -v m="$MARKER" '{ print } $0 == m { exit }' "$doc" >"$tmp"
    { echo; cat "$report"; } >>"$tmp"
    mv "$tmp" "$doc"
    echo "quality: wrote $doc (and $report; wall times in $root/timings.txt)"
else
    echo "quality: wrote $report (wall times in $root/timings.txt)"
fi
