#!/bin/sh
# shellcheck disable=SC2016 # damaged() expands its MESSAGE and COMMAND with $D set
# A damaged or foreign checkpoint is refused with one message that starts with the file,
# exit 1, and changes nothing: a state file with a flipped byte (its checksum), another
# version, another format, cut short or missing; a weights file cut short, or from
# another spec or another save; the state of one save beside the weights of another.
. "$(dirname "$0")/lib.sh"

AE="tests/specs/tiny-ae.yaml --progress lines --set train.checkpoint.every=100 --set train.checkpoint.keep=2"
# shellcheck disable=SC2086 # $AE is a list of arguments
run $AE --out "$TMP/ae"
is "$RC" 0 "one epoch of tests/specs/tiny-ae.yaml exits 0, a checkpoint at steps 100 and 141"

# damaged NAME DESCRIPTION MESSAGE COMMAND: in a copy of the run, COMMAND (shell text,
# $D is the copy) damages a file; --resume is then refused with MESSAGE and leaves the
# copy as it was: no file changed, none added.
n=0
damaged() {
    n=$((n + 1))
    D=$TMP/copy$n
    cp -R "$TMP/ae" "$D"
    eval "$3"
    cp -R "$D" "$D.before"
    # shellcheck disable=SC2086
    run $AE --epochs 2 --out "$D" --resume
    is "$ERR1" "$(eval "echo \"$2\"")" "$1: the message"
    is "$RC" 1 "$1: exit 1"
    diff -r "$D" "$D.before" >/dev/null
    ok $? "$1: the run directory is left as it was"
}
flip() { # FILE OFFSET: the byte at OFFSET becomes 0xff
    printf '\377' | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
size() {
    wc -c <"$1" | tr -d ' '
}

damaged "a flipped byte in last.state" '$D/last.state: checksum mismatch: the file is corrupt' \
    'flip "$D/last.state" 1000'
damaged "a flipped byte in last.state's checksum" '$D/last.state: checksum mismatch: the file is corrupt' \
    'flip "$D/last.state" $(($(size "$D/last.state") - 2))'
damaged "last.state of a newer version" \
    '$D/last.state: a checkpoint state of format version 3, newer than this build'"'"'s 2: update aigc-run' \
    'printf "\003" | dd of="$D/last.state" bs=1 seek=8 conv=notrunc 2>/dev/null'
damaged "last.state of version 1" \
    '$D/last.state: a checkpoint state of format version 1, which this build no longer reads; its weights still load with --init $D/last.safetensors' \
    'printf "\001" | dd of="$D/last.state" bs=1 seek=8 conv=notrunc 2>/dev/null'
damaged "last.state not a state file" '$D/last.state: not an aigc-run state file' \
    'echo "not a state file" >"$D/last.state"'
total=$(size "$TMP/ae/last.state")
damaged "last.state cut to 100 bytes" "\$D/last.state: truncated or padded: 100 bytes, the header says $total" \
    'head -c 100 "$TMP/ae/last.state" >"$D/last.state"'
damaged "last.state cut by 4 bytes" \
    "\$D/last.state: truncated or padded: $((total - 4)) bytes, the header says $total" \
    'head -c $(($(size "$TMP/ae/last.state") - 4)) "$TMP/ae/last.state" >"$D/last.state"'
damaged "last.state missing" '$D/last.state: cannot open: No such file or directory' 'rm "$D/last.state"'
# Cut to 5000 bytes: what is left after the 8-byte length and the JSON header it gives.
left=$((5000 - 8 - $(od -An -tu8 -N8 "$TMP/ae/last.safetensors" | tr -d ' ')))
damaged "last.safetensors cut short" \
    "\$D/last.safetensors: tensor 'E.0.weight': data_offsets [0, 100352] run past the data section ($left bytes)" \
    'head -c 5000 "$TMP/ae/last.safetensors" >"$D/last.safetensors"'
damaged "the weights of the step-100 save beside the state of the last" \
    '$D/last.state: does not belong to $D/last.safetensors: saved with other weights (was a save interrupted?)' \
    'cp "$D/step-00000100.safetensors" "$D/last.safetensors"'

# weights from another spec: the first name or shape that differs, and the spec the
# file was saved from when it is another one
expect_error 1 "$TMP/ae/last.safetensors: checkpoint lacks encoder.0.weight (a checkpoint of spec 'tiny-ae', not of 'vae')" \
    eval specs/vae.yaml --checkpoint "$TMP/ae"
expect_error 1 "$TMP/ae/last.safetensors: checkpoint has E.0.weight [32, 784] but the spec makes [48, 784] (a checkpoint of spec 'tiny-ae', not of 'tiny-ae-wide')" \
    tests/specs/tiny-ae-wide.yaml --init "$TMP/ae/last.safetensors" --out "$TMP/wide"
[ ! -e "$TMP/wide/metrics.jsonl" ]
ok $? "--init with weights that do not fit trains nothing"
expect_error 1 "$TMP/ae/last.safetensors: checkpoint has E.0.weight [32, 784] but the spec makes [48, 784] (a checkpoint of spec 'tiny-ae', not of 'tiny-ae-wide')" \
    tests/specs/tiny-ae-wide.yaml --resume "$TMP/ae/last" --out "$TMP/wide"
# the spec edited under its own name: the shapes say it all
expect_error 1 "$TMP/ae/last.safetensors: checkpoint has E.0.weight [32, 784] but the spec makes [16, 784]" \
    eval tests/specs/tiny-ae.yaml --checkpoint "$TMP/ae" --set "models.E.layers=[linear 16, relu]" --set models.G.in=16

# a state that does not fit, saved by another spec whose weights do: that spec named
sed 's/^name: tiny-ae$/name: tiny-sgd/; s/type: adam, lr: 1e-3/type: sgd, lr: 1e-3/' tests/specs/tiny-ae.yaml >"$TMP/tiny-sgd.yaml"
expect_error 1 "$TMP/ae/last.state: optimizer 'opt' was adam in the checkpoint, the spec says sgd (a checkpoint of spec 'tiny-ae', not of 'tiny-sgd')" \
    "$TMP/tiny-sgd.yaml" --resume "$TMP/ae" --out "$TMP/sgd"

# weights that hold a NaN (a run saved after it diverged): refused for --resume and
# --init, named with a warning for eval and sample; a FIFO in a checkpoint's place is
# refused without blocking
N=$TMP/nanw
cp -R "$TMP/ae" "$N"
perl -e 'open my $f, "+<", $ARGV[0] or die; binmode $f; read $f, my $h, 8;
    seek $f, 8 + unpack("Q<", $h) + 4 * 7, 0; print $f pack("V", 0x7fc00000); close $f or die' "$N/last.safetensors"
run tests/specs/tiny-ae.yaml --resume "$N" --out "$TMP/nanr" --progress lines
like "$(cat "$ERR")" "$N/last.safetensors: [EG].*.weight holds non-finite values: the run had diverged when it was saved; resume from an earlier checkpoint (train.checkpoint.keep keeps them)" \
    "--resume from weights holding a NaN: refused, and the parameter named"
is "$RC" 1 "... exit 1"
run tests/specs/tiny-ae.yaml --init "$N/last.safetensors" --out "$TMP/nani" --progress lines
like "$(cat "$ERR")" "$N/last.safetensors: [EG].*.weight holds non-finite values: the run had diverged when it was saved" \
    "--init from them: refused"
run eval tests/specs/tiny-ae.yaml --checkpoint "$N"
like "$(sed -n 1p "$ERR")" "$N/last.safetensors: warning: [EG].*.weight holds non-finite values (the run had diverged when it was saved)" \
    "eval from them: a warning first"
is "$RC" 0 "... and the evaluation of what they make"
mkfifo "$TMP/fifo.safetensors"
expect_error 1 "$TMP/fifo.safetensors: cannot open: not a regular file (a FIFO)" \
    eval tests/specs/tiny-ae.yaml --checkpoint "$TMP/fifo.safetensors"

done_testing
