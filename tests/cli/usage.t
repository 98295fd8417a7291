#!/bin/sh
# The command line: usage errors exit 2 with a pointer to --help; --help and --version
# exit 0; --set overrides are checked like the spec text they replace.
. "$(dirname "$0")/lib.sh"

S=tests/specs

# m) usage errors
expect_error 2 "aigc-run: no spec given"
is "$(sed -n 2p "$ERR")" "Try 'aigc-run --help'." "no spec: points at --help"
expect_error 2 "aigc-run: no spec given" check
expect_error 2 "aigc-run: unknown option '--frobnicate'" --frobnicate specs/gan.yaml
is "$(sed -n 2p "$ERR")" "Try 'aigc-run --help'." "unknown option: points at --help"
expect_error 2 "aigc-run: --epochs expects a whole number in [1, 1000000], got 'abc'" specs/gan.yaml --epochs abc
expect_error 2 "aigc-run: --epochs expects a whole number in [1, 1000000], got '0'" specs/gan.yaml --epochs 0
expect_error 2 "aigc-run: --seed expects a whole number in [0, 9223372036854775807], got '-1'" check specs/gan.yaml --seed -1
expect_error 2 "aigc-run: --threads expects a whole number in [1, 16], got '0'" check specs/gan.yaml --threads 0
expect_error 2 "aigc-run: --threads expects a whole number in [1, 16], got '17'" check specs/gan.yaml --threads 17
expect_error 2 "aigc-run: --out needs a value" specs/gan.yaml --out
expect_error 2 "aigc-run: --backend: unknown backend 'mkl' (openblas or onednn)" check specs/gan.yaml --backend mkl
export AIGC_BACKEND=blis
expect_error 2 "aigc-run: AIGC_BACKEND: unknown backend 'blis' (openblas or onednn)" check specs/gan.yaml
unset AIGC_BACKEND
expect_error 2 "aigc-run: --progress takes bar, lines or auto, not 'fancy'" specs/gan.yaml --progress fancy
expect_error 2 "aigc-run: unexpected argument 'specs/vae.yaml'" check specs/gan.yaml specs/vae.yaml

# n) --help and --version
run --help
is "$RC" 0 "--help exits 0"
like "$(sed -n 1p "$OUT")" "usage: aigc-run *" "--help prints the usage on stdout"
[ ! -s "$ERR" ]
ok $? "--help: nothing on stderr"
run -h
is "$RC" 0 "-h exits 0"
run check specs/gan.yaml --help
is "$RC" 0 "--help after other arguments exits 0"
like "$(sed -n 1p "$OUT")" "usage: aigc-run *" "--help after other arguments prints the usage"
run --version
is "$RC" 0 "--version exits 0"
like "$(cat "$OUT")" "aigc-run [0-9]*.[0-9]*.[0-9]*" "--version prints 'aigc-run X.Y.Z'"

# q) --set overrides: checked against the same ranges, placed at the override
expect_error 1 "--set train.epochs=0: 'epochs' must be an integer in [1, 1000000], got '0'" \
    check specs/vae.yaml --set train.epochs=0
expect_error 1 "--set train.epoch=3: unknown key 'epoch' in 'train'; did you mean 'epochs'?" \
    check specs/vae.yaml --set train.epoch=3
expect_error 1 "--set data.batch=0: 'batch' must be an integer in [1, 65536], got '0'" \
    check specs/vae.yaml --set data.batch=0
expect_error 1 "--set batch32: expected KEY=VALUE, like train.epochs=5" \
    check specs/vae.yaml --set batch32
expect_error 1 "--set name.x=3: 'x' is not inside a mapping or a list" check specs/vae.yaml --set name.x=3
expect_error 1 "--set models.encoder.layers.3=relu: '3' in a list of 3: index it by 0 to 2" \
    check specs/vae.yaml --set models.encoder.layers.3=relu

# r) a list or a mapping as the value (YAML flow), and a list's item by its index
run check specs/vae.yaml --set "models.encoder.layers=[linear 512, relu, linear 40]" \
    --set models.decoder.layers.0="linear 512"
is "$RC" 0 "--set models.encoder.layers=[...] and models.decoder.layers.0=...: check exits 0"
grep -q "all models: 835,384 parameters" "$OUT"
ok $? "... the models have the layers set (835,384 parameters; got $(grep 'all models' "$OUT"))"
run check specs/vae.yaml --set "train.optimizers.opt={type: sgd, lr: 0.01, params: [encoder, decoder]}"
is "$RC" 0 "--set train.optimizers.opt={...}: a mapping, check exits 0"
expect_error 1 "--set models.encoder.layers=[linear 512, rleu]:1:42: unknown layer 'rleu'; did you mean 'relu'?" \
    check specs/vae.yaml --set "models.encoder.layers=[linear 512, rleu]"
is "$(sed -n 2,3p "$ERR")" "  1 | --set models.encoder.layers=[linear 512, rleu]
    |                                          ^" "... the override shown with a caret at the word"
expect_error 1 "--set data={batch: 8, batch: 9}:1:23: duplicate key 'batch' (first at 1:13)" \
    check specs/vae.yaml --set "data={batch: 8, batch: 9}"

run check specs/vae.yaml --set data.batch=32
is "$RC" 0 "--set data.batch=32: check exits 0"
grep -q "planned for batch 32\$" "$OUT"
ok $? "--set data.batch=32: the step is planned for batch 32"

# An override trains: 9,000 images in batches of 32 are 282 steps.
run $S/tiny-ae.yaml --set data.batch=32 --set train.epochs=1 --out "$TMP/ae" --progress lines
is "$RC" 0 "--set data.batch=32: a run exits 0"
is "$(json_field "$TMP/ae/metrics.jsonl" epoch 1 step)" 282 "--set data.batch=32: 282 steps in the epoch"

# An epoch of one batch: its first progress line is also its last, written once.
run $S/tiny-ae.yaml --set data.batch=9000 --set train.epochs=2 --out "$TMP/ae1" --progress lines
is "$RC" 0 "an epoch of one batch exits 0"
is "$(grep -c '^epoch [12]/2 9000/9000 ' "$ERR")" 2 "one progress line per epoch of one batch"

# Options a command does not use are reported, not ignored.
expect_error 2 "aigc-run: --section is for sample, eval and encode" check specs/vae.yaml --section prior
expect_error 2 "aigc-run: -o is for sample and encode" specs/vae.yaml -o x.png
expect_error 2 "aigc-run: -o is for sample and encode" eval specs/vae.yaml --checkpoint runs/vae -o x.png
expect_error 2 "aigc-run: --json is for eval" sample specs/vae.yaml --checkpoint runs/vae --json
expect_error 2 "aigc-run: -n and --section are for sample and eval --quality" eval specs/vae.yaml -n 5
expect_error 2 "aigc-run: --out is for train" sample specs/vae.yaml --out "$TMP/o"
expect_error 2 "aigc-run: --resume is for train" check specs/vae.yaml --resume
expect_error 2 "aigc-run: --init is for train" eval specs/vae.yaml --init runs/vae
expect_error 2 "aigc-run: --progress is for train" check specs/vae.yaml --progress lines
expect_error 2 "aigc-run: --hook-errors is for train" sample specs/vae.yaml --hook-errors warn
expect_error 2 "aigc-run: --unsafe-hooks is for train and check" eval specs/vae.yaml --unsafe-hooks
expect_error 2 "aigc-run: --checkpoint is for sample, eval and encode; to continue training use --resume" check specs/vae.yaml --checkpoint runs/vae

done_testing
