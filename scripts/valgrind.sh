#!/bin/sh
# valgrind.sh — valgrind memcheck over the C tests and a set of short command-line runs
# (`make valgrind`, which builds first). Every run must end with the exit code it is
# meant to have (0, or 1 or 2 for an error path), and valgrind must find no invalid
# access, no use of an uninitialised value and no leak of any kind (definite, indirect,
# possible, or still reachable at exit) — on success and on every error path alike.
#
#   scripts/valgrind.sh [--only c|cli] [--keep]
#
# Training under memcheck runs about 60 images a second, so the runs train on a slice of
# the embedded MNIST (128 training images, 32 test images, made here in a temporary
# directory) for one epoch: two steps of each, with every stage of a run — checkpoints, resume, the
# test pass, sample grids, hooks — still on the way. Prints one TAP line per run and
# exits 1 when one failed; valgrind's own report for a failed run is kept in the log
# directory it names.
set -u
cd "$(dirname "$0")/.." || exit 1
only=
keep=
while [ $# -gt 0 ]; do
    case $1 in
    --only) only=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: scripts/valgrind.sh [--only c|cli] [--keep]" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "valgrind.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/aigc-valgrind.XXXXXX") || exit 1
LOGS=$TMP/logs
mkdir "$LOGS"
# 99: a valgrind finding, distinct from every code aigc-run uses.
VG="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --suppressions=scripts/valgrind.supp"
# One BLAS thread: OpenBLAS's thread pool stays out of the leak report's way, and the
# runs are as fast under valgrind as they can be.
export OPENBLAS_NUM_THREADS=1
# oneDNN is kept to SSE4.1: valgrind has no AVX-512, and oneDNN's AVX2 sgemm kernels
# load whole vectors past the end of an operand, which memcheck reports as reads after
# the block (its SSE4.1 kernels do not).
export ONEDNN_MAX_CPU_ISA=SSE41
# A cache of inflated data of this run's own: the first run that loads data/mnist
# writes its entry, the later ones read it, both under memcheck.
export AIGC_CACHE="$TMP/cache"
count=0
failed=0
start=$(date +%s)

# vg NAME WANT COMMAND...: COMMAND under memcheck exits WANT with a clean report.
vg() {
    name=$1 want=$2
    shift 2
    count=$((count + 1))
    log=$LOGS/$count.log
    # shellcheck disable=SC2086 # $VG is a command and its options
    $VG --log-file="$log" "$@" >"$LOGS/$count.out" 2>"$LOGS/$count.err"
    rc=$?
    if [ "$rc" -eq "$want" ] && [ ! -s "$log" ]; then
        echo "ok $count - $name"
    else
        failed=$((failed + 1))
        echo "not ok $count - $name (exit $rc, wanted $want; valgrind's report: $log)"
        sed 's/^/# /' "$log" | head -n 40
        sed 's/^/# stderr: /' "$LOGS/$count.err" | head -n 5
    fi
}

echo "TAP version 13"

if [ "$only" != cli ]; then
    for t in build/tests/test_*.t; do
        vg "$t" 0 "$t"
    done
fi

if [ "$only" != c ]; then
    # The slice: the first N images of each split, with the header's count set to N.
    # shellcheck disable=SC2059 # the format is the byte, as an octal escape
    be32() {
        printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))"
        printf "\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"
    }
    D=$TMP/data
    mkdir "$D"
    slice() { # SPLIT N
        { printf '\000\000\010\003'; be32 "$2"; be32 28; be32 28
          gzip -dc "data/mnist/$1-images-idx3-ubyte.gz" | tail -c +17 | head -c $(($2 * 784)); } >"$D/$1-images-idx3-ubyte"
        { printf '\000\000\010\001'; be32 "$2"
          gzip -dc "data/mnist/$1-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$2"; } >"$D/$1-labels-idx1-ubyte"
    }
    slice train 128
    slice t10k 32
    R=$TMP/runs
    A="./aigc-run"
    DS="--set data.path=$D"          # sample and eval
    S="$DS --progress lines --epochs 1" # training

    # shellcheck disable=SC2086 # $S is a list of arguments
    {
        vg "check specs/gan.yaml" 0 $A check specs/gan.yaml
        vg "check specs/ddpm.yaml" 0 $A check specs/ddpm.yaml
        vg "train the VAE, a checkpoint every 2 steps, 2 kept" 0 $A specs/vae.yaml $S --out "$R/vae" \
            --set train.checkpoint.every=2 --set train.checkpoint.keep=2
        vg "resume the VAE for a second epoch" 0 $A specs/vae.yaml $S --out "$R/vae" --epochs 2 --resume
        vg "sample from the VAE" 0 $A sample specs/vae.yaml $DS --checkpoint "$R/vae" -o "$R/vae.png"
        vg "sample without the data set (the checkpoint's record)" 0 $A sample specs/vae.yaml \
            --set data.path="$R/no-data" --checkpoint "$R/vae" -o "$R/vae-nodata.png"
        vg "sample without the data set: a section that reads the test split" 1 $A sample specs/vae.yaml \
            --set data.path="$R/no-data" --checkpoint "$R/vae" --section reconstruction
        vg "resume: nothing to train" 0 $A specs/vae.yaml $S --out "$R/vae" --epochs 2 --resume
        vg "eval the VAE" 0 $A eval specs/vae.yaml $DS --checkpoint "$R/vae" --json
        vg "train the GAN (two updates a step)" 0 $A specs/gan.yaml $S --out "$R/gan"
        vg "train the VAE on 2 threads (the pool; the test split read on a thread)" 0 \
            $A specs/vae.yaml $S --out "$R/vae2" --threads 2
        vg "data: a corrupt test split, read on a thread" 1 $A check specs/vae.yaml --threads 2 \
            --set data.path=tests/bad/data/corrupt-test
        vg "train with hooks: every callback, a sample grid" 0 $A tests/specs/hooks-ae.yaml $S --out "$R/hooks" \
            --set train.log_every=1
        vg "train the classifier" 0 $A specs/classifier.yaml $S --out "$R/classifier"
        vg "eval --quality" 0 $A eval specs/vae.yaml $DS --checkpoint "$R/vae" \
            --quality "specs/classifier.yaml:$R/classifier" -n 32
        vg "on_nan: skip" 0 $A tests/specs/nan-some-batches.yaml $S --out "$R/skip" --set data.batch=4
        vg "encode the VAE's latent: features, labels, the scatter" 0 $A encode specs/vae.yaml $DS \
            --checkpoint "$R/vae" -o "$R/latent"
        vg "train the linear probe on the features data set" 0 $A specs/linear-probe.yaml --progress lines \
            --epochs 1 --set data.path="$R/latent" --out "$R/probe"
        vg "train the conditional GAN" 0 $A specs/cgan.yaml $S --out "$R/cgan"
        vg "sample --format idx: images and labels" 0 $A sample specs/cgan.yaml $DS --checkpoint "$R/cgan" \
            --format idx -n 300 -o "$R/gen"
        vg "train on generated images, tested on real ones" 0 $A specs/classifier.yaml --progress lines \
            --epochs 1 --set data.path="$R/gen" --set data.test_path="$D" --out "$R/cas"
        vg "WGAN: RMSprop, clipped weights, G every 5 steps" 0 $A specs/wgan.yaml $S --out "$R/wgan"
        vg "WGAN: the batch cut in five" 0 $A tests/specs/wgan-split.yaml $S --out "$R/wgan-split" --set data.batch=40
        vg "SNGAN: spectral norm, hinge loss" 0 $A specs/sngan.yaml $S --out "$R/sngan"

        vg "usage: an unknown option" 2 $A check specs/vae.yaml --frobnicate
        vg "usage: an option for another command" 2 $A sample specs/vae.yaml --out "$R/x"
        vg "spec: malformed YAML" 1 $A check tests/specs/bad-yaml.yaml
        vg "spec: an unknown layer" 1 $A check tests/specs/unknown-layer.yaml
        vg "spec: a shape mismatch" 1 $A check tests/specs/shape-noise-into-d.yaml
        vg "spec: over the memory limit" 1 $A check tests/specs/huge.yaml --max-memory 100
        vg "data: a missing directory" 1 $A check tests/specs/missing-data.yaml
        vg "training: a NaN stops the run" 1 $A tests/specs/diverges.yaml $S --out "$R/nan"
        vg "training: too many skipped batches" 1 $A tests/specs/nan-gradient.yaml $S --out "$R/skip2"
        vg "hooks: a syntax error" 1 $A tests/specs/hooks-syntax.yaml $S --out "$R/hsyntax"
        vg "hooks: an error in on_epoch_end (the run saved)" 1 $A tests/specs/hooks-ae.yaml $S \
            --out "$R/herror" --set hooks=tests/hooks/error_epoch.lua
        vg "hooks: a runaway on_step" 1 $A tests/specs/hooks-ae.yaml $S --out "$R/hbudget" \
            --set hooks=tests/hooks/budget.lua
        vg "checkpoint: from another spec" 1 $A eval specs/gan.yaml $DS --checkpoint "$R/vae"
        cp -R "$R/vae" "$R/vae-bad"
        printf '\377' | dd of="$R/vae-bad/last.state" bs=1 seek=1000 conv=notrunc 2>/dev/null
        vg "checkpoint: a corrupt state file" 1 $A specs/vae.yaml $S --out "$R/vae-bad" --epochs 3 --resume
        head -c 5000 "$R/vae/last.safetensors" >"$R/cut.safetensors"
        vg "checkpoint: weights cut short" 1 $A sample specs/vae.yaml $DS --checkpoint "$R/cut.safetensors"
        vg "resume: nothing there" 1 $A specs/vae.yaml $S --out "$R/none" --resume

        # Text: the fixture corpus and the small transformer (its own data path).
        T="tests/specs/tiny-gpt.yaml"
        vg "text: train the small transformer, its texts each epoch" 0 $A $T --out "$R/gpt" --epochs 1 \
            --progress lines
        vg "text: sample from a prompt" 0 $A sample $T --checkpoint "$R/gpt" --prompt "The" --length 8 -n 2
        vg "text: eval in bits per character" 0 $A eval $T --checkpoint "$R/gpt" --json
        vg "text: a prompt byte outside the vocabulary" 1 $A sample $T --checkpoint "$R/gpt" --prompt Zebra
        vg "text: a missing corpus" 1 $A check $T --set data.path=tests/data/no-such
        vg "text: sample without the corpus (the checkpoint's vocabulary)" 0 $A sample $T \
            --checkpoint "$R/gpt" --prompt "The" --length 8 -n 2 --set data.path=tests/data/no-such \
            --set "sample.steps.0=window = slice(concat(zeros(n, context), prompt, axis=1), -context, axis=1)"
    }
fi

echo "1..$count"
echo "# $count runs under valgrind in $(($(date +%s) - start)) s"
if [ -n "$keep" ] || [ "$failed" -ne 0 ]; then
    echo "# logs kept in $LOGS"
else
    rm -rf "$TMP"
fi
[ "$failed" -eq 0 ]
