#!/bin/sh
# Lua hooks in a training run: every callback is called, and aigc.set_lr, aigc.stop,
# aigc.log, aigc.sample and aigc.save_checkpoint act on the run; a broken script ends
# the run with the callback, the place and a traceback (and the run so far saved), or
# warns and goes on; a syntax error stops the run before it starts; the instruction
# budget and the io sandbox hold. The scripts are tests/hooks/*.lua, run on
# tests/specs/hooks-ae.yaml (71 steps an epoch, 0.3 s).
. "$(dirname "$0")/lib.sh"

SPEC=tests/specs/hooks-ae.yaml
# hooks ARGS...: a training run of $SPEC with progress lines.
hooks() {
    run "$SPEC" --progress lines "$@"
}
# The lines the hooks printed: stderr without the progress lines.
hook_lines() {
    grep -v '^epoch [0-9]*/[0-9]* [0-9]*/[0-9]* ' "$ERR"
}
strip_seconds() {
    sed 's/"seconds":[^,}]*,\{0,1\}//' "$1"
}
# The step a state file was saved at: its first record, an i64 at byte 40 (see
# include/aigc/ckpt.h).
state_step() {
    od -An -td8 -j40 -N8 "$1" 2>/dev/null | tr -d ' '
}
# A PNG's size from its IHDR: WIDTHxHEIGHT.
png_size() {
    od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", (($1 * 256 + $2) * 256 + $3) * 256 + $4, (($5 * 256 + $6) * 256 + $7) * 256 + $8 }'
}
is_png() {
    [ "$(od -An -tx1 -N8 "$1" | tr -d ' ')" = 89504e470d0a1a0a ]
}
TAB=$(printf '\t')

# a) every callback, in order; on_step every 25 steps
run check "$SPEC"
is "$RC" 0 "check accepts a spec with a hook script"
hooks --out "$TMP/callbacks"
exits_0 "a run with tests/hooks/callbacks.lua exits 0"
is "$(hook_lines)" "on_start${TAB}hooks-ae${TAB}0${TAB}2${TAB}0
on_step${TAB}1${TAB}25${TAB}true
on_step${TAB}1${TAB}50${TAB}true
on_eval${TAB}1${TAB}true
on_epoch_end${TAB}1${TAB}71${TAB}0.001
on_step${TAB}2${TAB}75${TAB}true
on_step${TAB}2${TAB}100${TAB}true
on_step${TAB}2${TAB}125${TAB}true
on_eval${TAB}2${TAB}true
on_epoch_end${TAB}2${TAB}142${TAB}0.001
on_end${TAB}2${TAB}142" "each callback prints its line on stderr, in the order of the run"
[ "$(grep -c . "$OUT")" -eq 2 ] && ! grep -q '^on_' "$OUT"
ok $? "stdout holds the two epoch summaries and no hook line"

# b) aigc.set_lr("opt", 0) in on_start is --set train.optimizers.opt.lr=0
hooks --out "$TMP/lr-hook" --epochs 1 --set hooks=tests/hooks/lr_zero.lua
is "$RC" 0 "a run with tests/hooks/lr_zero.lua exits 0"
hooks --out "$TMP/lr-set" --epochs 1 --set hooks=tests/hooks/none.lua --set train.optimizers.opt.lr=0
is "$RC" 0 "a run with --set train.optimizers.opt.lr=0 exits 0"
strip_seconds "$TMP/lr-hook/metrics.jsonl" >"$TMP/m.hook"
strip_seconds "$TMP/lr-set/metrics.jsonl" >"$TMP/m.set"
strip_seconds "$TMP/callbacks/metrics.jsonl" | sed '/"epoch":2/d' >"$TMP/m.lr"
cmp -s "$TMP/m.hook" "$TMP/m.set" && cmp -s "$TMP/lr-hook/last.safetensors" "$TMP/lr-set/last.safetensors"
ok $? "aigc.set_lr to 0: the metrics and weights of a run with learning rate 0"
! cmp -s "$TMP/m.hook" "$TMP/m.lr"
ok $? "... which differ from those of the spec's learning rate"

# c) aigc.stop: after epoch 1 of 3, with a reason; in the middle of an epoch, without
hooks --out "$TMP/stop" --epochs 3 --set hooks=tests/hooks/stop.lua
is "$RC" 0 "a run stopped by aigc.stop exits 0"
is "$(grep -c '"kind":"epoch"' "$TMP/stop/metrics.jsonl")" 1 "it ends after the first of 3 epochs"
like "$(hook_lines)" "plateau: test loss 0.2*
on_end after epoch${TAB}1" "the reason is printed, then on_end runs"
is "$(state_step "$TMP/stop/last.state")" 71 "last is the checkpoint of the first epoch's end"
hooks --out "$TMP/stop-step" --set hooks=tests/hooks/stop_step.lua
is "$RC" 0 "a run stopped in on_step exits 0"
is "$(hook_lines)" "stopped by hook 'on_step'" "without a reason: stopped by hook 'on_step'"
! grep -q '"kind":"epoch"' "$TMP/stop-step/metrics.jsonl" && [ -s "$TMP/stop-step/metrics.jsonl" ]
ok $? "stopped at step 30: step rows, no epoch row"
is "$(state_step "$TMP/stop-step/last.state")" 30 "last is a checkpoint of step 30"

# d) aigc.log: a value in each step row, another in the epoch row
hooks --out "$TMP/log" --epochs 1 --set hooks=tests/hooks/log.lua
is "$RC" 0 "a run with tests/hooks/log.lua exits 0"
M=$TMP/log/metrics.jsonl
is "$(sed -n 1p "$M" | sed 's/"seconds":[^,]*,//')" '{"kind":"step","epoch":1,"step":10,"loss":0.654238045,"step_x10":100}' \
    "the step row holds the value logged in on_step"
is "$(json_field "$M" epoch 1 epoch_sq),$(json_field "$M" epoch 1 step_x10)" "1,710" \
    "the epoch row holds the values logged in on_epoch_end and the last on_step"

# e) a runtime error in on_epoch_end: the callback, the place, a traceback; the run so
# far saved, and resumed with a working script it ends as a run that never failed
hooks --out "$TMP/error" --set hooks=tests/hooks/error_epoch.lua
is "$RC" 1 "an error in on_epoch_end exits 1"
is "$(hook_lines | sed -n 1p)" "hook 'on_epoch_end' failed: tests/hooks/error_epoch.lua:3: attempt to index a nil value (field 'missing')" \
    "the message names the callback, the script's line and the error"
is "$(hook_lines | sed 1d)" "stack traceback:
${TAB}tests/hooks/error_epoch.lua:3: in upvalue 'helper'
${TAB}tests/hooks/error_epoch.lua:7: in function 'on_epoch_end'
(the run so far is saved in $TMP/error/last)" "then a Lua traceback and where the run is saved"
[ -s "$TMP/error/last.safetensors" ] && [ -s "$TMP/error/last.state" ]
ok $? "last.safetensors and last.state are there"
hooks --out "$TMP/error" --set hooks=tests/hooks/none.lua --resume
is "$RC" 0 "--resume with the script fixed exits 0"
strip_seconds "$TMP/error/metrics.jsonl" >"$TMP/m.error"
strip_seconds "$TMP/callbacks/metrics.jsonl" >"$TMP/m.callbacks"
cmp -s "$TMP/m.error" "$TMP/m.callbacks"
ok $? "... and its metrics are those of a run whose hook never failed (both epoch rows, the same means)"
if ! cmp -s "$TMP/m.error" "$TMP/m.callbacks"; then diag "$(diff "$TMP/m.callbacks" "$TMP/m.error")"; fi
cmp -s "$TMP/error/last.safetensors" "$TMP/callbacks/last.safetensors"
ok $? "... and the same weights"

# e2) an error in on_step at a step that writes a metrics row: the row is written, then
# the run saved; resumed, it ends as a run that never failed
hooks --out "$TMP/error_step" --set hooks=tests/hooks/error_step.lua
is "$(hook_lines | sed -n 1p)" "hook 'on_step' failed: tests/hooks/error_step.lua:4: step 30" "an error in on_step: the message"
is "$(json_field "$TMP/error_step/metrics.jsonl" step 1 step | tail -n 1)" 30 "the failing step's metrics row is written"
hooks --out "$TMP/error_step" --set hooks=tests/hooks/none.lua --resume
is "$RC" 0 "--resume after the failure in on_step exits 0"
strip_seconds "$TMP/error_step/metrics.jsonl" >"$TMP/m.error_step"
cmp -s "$TMP/m.error_step" "$TMP/m.callbacks"
ok $? "... and its metrics are those of a run whose hook never failed"
cmp -s "$TMP/error_step/last.safetensors" "$TMP/callbacks/last.safetensors"
ok $? "... and the same weights"

# f) --hook-errors warn: the same error is printed once, the callback disabled, the
# run completes
hooks --out "$TMP/warn" --set hooks=tests/hooks/error_epoch.lua --hook-errors warn
is "$RC" 0 "with --hook-errors warn the run exits 0"
is "$(hook_lines | sed -n 1p)" \
    "hook 'on_epoch_end' failed (disabled for the rest of the run): tests/hooks/error_epoch.lua:3: attempt to index a nil value (field 'missing')" \
    "the error is printed as a warning"
is "$(hook_lines | grep -c failed)" 1 "once: the failing callback is not called again"
is "$(grep -c '"kind":"epoch"' "$TMP/warn/metrics.jsonl")" 2 "both epochs are trained"

# g) a syntax error: reported by check and before a run starts, at the spec's hooks key
want="tests/specs/hooks-syntax.yaml:17:8: tests/hooks/syntax.lua:3: unexpected symbol near '='"
expect_error 1 "$want" check tests/specs/hooks-syntax.yaml
expect_error 1 "$want" tests/specs/hooks-syntax.yaml --out "$TMP/syntax"
[ ! -e "$TMP/syntax/metrics.jsonl" ] && [ ! -e "$TMP/syntax/last.state" ]
ok $? "no training: no metrics file, no checkpoint"
# ... and a run that does not start leaves the metrics of an earlier run alone
cp -R "$TMP/log" "$TMP/syntax2"
run tests/specs/hooks-syntax.yaml --out "$TMP/syntax2"
cmp -s "$TMP/syntax2/metrics.jsonl" "$TMP/log/metrics.jsonl"
ok $? "a script that does not load leaves the run directory's metrics as they were"

# h) a runaway loop meets the instruction budget
hooks --out "$TMP/budget" --set hooks=tests/hooks/budget.lua
is "$RC" 1 "a runaway on_step exits 1"
is "$ERR1" "hook 'on_step' failed: tests/hooks/budget.lua:4: hook 'on_step' exceeded its budget of 10000000 instructions" \
    "the budget's message"

# i) io only with --unsafe-hooks
hooks --out "$TMP/io" --epochs 1 --set hooks=tests/hooks/io.lua
is "$RC" 1 "io.open without --unsafe-hooks exits 1"
is "$ERR1" "hook 'on_start' failed: tests/hooks/io.lua:3: attempt to index a nil value (global 'io')" \
    "io is nil in the sandbox"
[ ! -e "$TMP/io/io.txt" ]
ok $? "no file written"
hooks --out "$TMP/io-unsafe" --epochs 1 --set hooks=tests/hooks/io.lua --unsafe-hooks
is "$RC" 0 "io.open with --unsafe-hooks exits 0"
is "$(cat "$TMP/io-unsafe/io.txt" 2>/dev/null)" "written by hooks-ae" "the hook wrote its file"
# The test loss's last digits follow the rounding of sigmoid and log (runtime/ops/vmath.h).
hooks --out "$TMP/csv" --set hooks=scripts/hooks/log_csv.lua --unsafe-hooks
is "$RC" 0 "scripts/hooks/log_csv.lua with --unsafe-hooks exits 0"
like "$(cat "$TMP/csv/hooks.csv" 2>/dev/null)" "epoch,step,seconds,train_loss,test_loss,lr_opt
1,71,*,0.435271155,0.2749996*,0.001
2,142,*,0.257672172,0.245029083,0.001" "log_csv.lua writes a header and a row per epoch, the metrics' values"

# j) aigc.sample and aigc.save_checkpoint at step 10
hooks --out "$TMP/requests" --epochs 1 --set hooks=tests/hooks/requests.lua --unsafe-hooks
is "$RC" 0 "a run with tests/hooks/requests.lua exits 0"
is "$(hook_lines)" "step 1: no last.state
step 11: last.state saved at step 10" "aigc.save_checkpoint() at step 10 writes last"
is_png "$TMP/requests/hook-16.png"
ok $? "aigc.sample{path = 'hook-16.png'} writes a PNG there"
[ "$(png_size "$TMP/requests/hook-16.png")" = 122x122 ]
ok $? "aigc.sample{n = 16}: a 4x4 grid of 28x28 images, 2 pixels apart (got $(png_size "$TMP/requests/hook-16.png"))"
is_png "$TMP/requests/samples-step-00000010-1.png" &&
    [ "$(png_size "$TMP/requests/samples-step-00000010-1.png")" = 242x242 ]
ok $? "aigc.sample{}: the section's 64 images, 8x8, where the loop chooses"
is_png "$TMP/requests/hook-100.png" && [ "$(png_size "$TMP/requests/hook-100.png")" = 302x302 ]
ok $? "aigc.sample{n = 100}: the section drawn twice, a 10x10 grid (got $(png_size "$TMP/requests/hook-100.png"))"

done_testing
