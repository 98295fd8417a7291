#!/bin/sh
# Spec errors: each ends in one message that starts FILE:LINE:COL at the text at fault,
# with "did you mean" where a near name exists, and exit code 1; `check` and a training
# run report them alike, before any training starts.
. "$(dirname "$0")/lib.sh"

S=tests/specs

# a) malformed YAML
expect_error 1 "$S/bad-yaml.yaml:7:7: did not find expected ',' or ']' (while parsing a flow sequence at 6:6)" \
    check $S/bad-yaml.yaml

# b) unknown keys
expect_error 1 "$S/unknown-top-key.yaml:6:1: unknown key 'trian'; did you mean 'train'?" \
    check $S/unknown-top-key.yaml
expect_error 1 "$S/unknown-train-key.yaml:8:3: unknown key 'optimisers' in 'train'; did you mean 'optimizers'?" \
    check $S/unknown-train-key.yaml

# c) unknown layer
expect_error 1 "$S/unknown-layer.yaml:7:14: unknown layer 'lienar'; did you mean 'linear'?" \
    check $S/unknown-layer.yaml

# d) shape mismatches, at the argument of the call
expect_error 1 "$S/shape-noise-into-d.yaml:15:37: model 'D' expects input [B, 784], got [B, 100]" \
    check $S/shape-noise-into-d.yaml
expect_error 1 "$S/shape-data-into-g.yaml:11:20: model 'G' expects input [B, 100], got [B, 784]" \
    check $S/shape-data-into-g.yaml

# e) undefined name in a step
expect_error 1 "$S/undefined-name.yaml:12:18: undefined name 'recn'; did you mean 'recon'?" \
    check $S/undefined-name.yaml

# f) a model that no update trains
expect_error 1 "$S/untrained-model.yaml:5:3: model 'E' has 25120 parameters but no optimizer updates them; add it to an optimizer's 'params'" \
    check $S/untrained-model.yaml

# g) an optimizer never used
expect_error 1 "$S/unused-optimizer.yaml:10:5: optimizer 'opt2' is never used: add 'update opt2: LOSS' to the step" \
    check $S/unused-optimizer.yaml

# j) duplicate key
expect_error 1 "$S/duplicate-key.yaml:5:1: duplicate key 'seed' (first at 3:1)" \
    check $S/duplicate-key.yaml

# k) bad number
expect_error 1 "$S/bad-number.yaml:9:27: 'lr' must be a number, got '2e-4x'" \
    check $S/bad-number.yaml

# l) update of an unknown optimizer
expect_error 1 "$S/update-unknown-optimizer.yaml:12:14: unknown optimizer 'opt_g'; did you mean 'opt_G'?" \
    check $S/update-unknown-optimizer.yaml

# The mistakes that fixes to the messages came from.
expect_error 1 "$S/flow-mapping-comma.yaml:13:29: unknown key '32))' in 'sample' (a comma inside {...} ends a value: quote the expression, or write the mapping one key per line)" \
    check $S/flow-mapping-comma.yaml
expect_error 1 "$S/reduction-typo.yaml:11:27: undefined name 'summ'; did you mean 'sum'?" \
    check $S/reduction-typo.yaml
expect_error 1 "$S/constant-loss.yaml:11:19: update opt: the loss is a constant; it must be computed from the models" \
    check $S/constant-loss.yaml

# A layer argument that takes words: the message is at the argument and lists them.
sed 's/\[made 512, relu/[made 512 order=randon, relu/' specs/made.yaml >"$TMP/made.yaml"
expect_error 1 "$TMP/made.yaml:15:29: made: 'order' must be natural, reversed or random, got 'randon'; did you mean 'random'?" \
    check "$TMP/made.yaml"

# check's table names a layer's arguments as the spec gave them: by position while none
# is left out, then by name; attention is a row of its own with its FLOPs.
run check specs/classifier.yaml
grep -q '^  c1: conv2d 16 5 padding=2 ' "$OUT"
ok $? "check: conv2d 16 5 padding=2, the stride left at its default"
sed 's/\[made 512, relu/[made 512 order=random connect=random seed=2, relu/' specs/made.yaml >"$TMP/made.yaml"
run check "$TMP/made.yaml"
grep -q '^  made 512 order=random connect=random seed=2 ' "$OUT"
ok $? "check: made 512 order=random connect=random seed=2"
run check $S/tiny-gpt.yaml
grep -q '^  b1: causal_attention 2 *\[B, 16, 32\] *0 *32768$' "$OUT"
ok $? "check: causal_attention 2 on [B, 16, 96]: 4 T^2 C = 32,768 FLOPs per sample"

# The message shows the line with a caret under the column.
run check $S/unknown-layer.yaml
is "$(sed -n 2,3p "$ERR")" "  7 |     layers: [lienar 256, relu, linear 784, sigmoid]
    |              ^" "the message quotes the spec line and marks the column"

# Training reports the same error as check, and creates no run directory.
expect_error 1 "$S/undefined-name.yaml:12:18: undefined name 'recn'; did you mean 'recon'?" \
    $S/undefined-name.yaml --out "$TMP/run" --progress lines
[ ! -e "$TMP/run" ]
ok $? "a spec error leaves no run directory"

# A spec that does not exist.
expect_error 1 "$S/no-such-spec.yaml: cannot open: No such file or directory" check $S/no-such-spec.yaml

# A hook script that is not there is reported at the spec's hooks: line.
expect_error 1 "$S/hooks.yaml:10:8: scripts/log.lua: cannot open the hook script: No such file or directory (a relative path, read from the current directory $ROOT)" \
    check $S/hooks.yaml

done_testing
