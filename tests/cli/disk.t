#!/bin/sh
# A full disk and a read-only run directory, on a small tmpfs mounted for the test in a
# mount namespace of its own (unshare -m as root, unshare -rm through a user namespace
# otherwise; skipped when neither may mount): a checkpoint save that meets ENOSPC is
# reported and leaves the previous checkpoint whole and loadable; a run directory that
# cannot be written is reported before any training.
if [ -z "${AIGC_DISK_NS:-}" ]; then
    export AIGC_DISK_NS=1
    for u in "unshare -m" "unshare -rm"; do
        # shellcheck disable=SC2086,SC2016 # $u is a command and its options; $d is the inner shell's
        if $u sh -c 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d" && rmdir "$d"' \
            2>/dev/null; then
            # shellcheck disable=SC2086
            exec $u sh "$0" "$@"
        fi
    done
    echo "TAP version 13"
    echo "1..0 # SKIP cannot mount a tmpfs here (needs root, or user namespaces)"
    exit 0
fi
. "$(dirname "$0")/lib.sh"

AE="tests/specs/tiny-ae.yaml --progress lines"
FS=$TMP/fs RO=$TMP/ro
mkdir "$FS" "$RO"
trap 'umount "$RO" 2>/dev/null; umount "$FS" 2>/dev/null; rm -rf "$TMP"' EXIT
mount -t tmpfs -o size=2m tmpfs "$FS" || exit 1

# One epoch outside the tmpfs, then the run copied onto it and the rest of the tmpfs
# filled but for 64 KiB: less than the next checkpoint's weights (204 KB).
# shellcheck disable=SC2086 # $AE is a list of arguments
run $AE --out "$TMP/ae"
is "$RC" 0 "one epoch of tests/specs/tiny-ae.yaml"
cp -R "$TMP/ae" "$FS/ae"
cp -R "$TMP/ae" "$TMP/before"
dd if=/dev/zero of="$FS/fill" bs=4k 2>/dev/null
truncate -s -64K "$FS/fill"

# shellcheck disable=SC2086
run $AE --epochs 2 --out "$FS/ae" --resume
is "$(sed -n '$p' "$ERR")" "$FS/ae/last.state: cannot write: No space left on device" \
    "a save on a full disk: the message names the file and ENOSPC"
is "$RC" 1 "a save on a full disk: exit 1"
cmp -s "$FS/ae/last.safetensors" "$TMP/before/last.safetensors" &&
    cmp -s "$FS/ae/last.state" "$TMP/before/last.state"
ok $? "the previous checkpoint is left whole"
is "$(cd "$FS/ae" && ls)" "last.safetensors
last.state
metrics.jsonl
report.html
run.json
spec.yaml" "no temporary file is left behind"
run eval tests/specs/tiny-ae.yaml --checkpoint "$FS/ae"
is "$RC" 0 "the previous checkpoint still loads (eval)"
rm "$FS/fill"
# shellcheck disable=SC2086
run $AE --epochs 2 --out "$FS/ae" --resume
is "$RC" 0 "with room again, the run resumes from it to the end"
# shellcheck disable=SC2086
run $AE --epochs 2 --out "$TMP/whole"
cmp -s "$FS/ae/last.safetensors" "$TMP/whole/last.safetensors"
ok $? "... and ends as a run that never met the full disk"

# A read-only run directory (the tmpfs again, through a read-only bind mount; a chmod
# would not stop root): reported before any training, nothing changed.
if ! mount --bind "$FS" "$RO" || ! mount -o remount,bind,ro "$RO"; then
    echo "Bail out! cannot make a read-only bind mount"
    exit 1
fi
# shellcheck disable=SC2086 # $AE is a list of arguments
expect_error 1 "$RO/new: cannot create the run directory: Read-only file system" $AE --out "$RO/new"
# shellcheck disable=SC2086
expect_error 1 "$RO/ae/metrics.jsonl: cannot write the metrics: Read-only file system" $AE --out "$RO/ae"
# shellcheck disable=SC2086
expect_error 1 "$RO/ae/metrics.jsonl: cannot trim to the checkpoint: Read-only file system" \
    $AE --epochs 3 --out "$RO/ae" --resume
cmp -s "$RO/ae/last.safetensors" "$TMP/whole/last.safetensors"
ok $? "the checkpoint there is left as it was"

done_testing
