#!/bin/sh
# Data-parallel training under mpirun (docs/scaling.md): 2 ranks end where 1 rank ends,
# to float summation order (1e-5), on the GAN (20 steps), the VAE (an epoch of 20 steps
# with its evaluation) and a small DDPM; 2 ranks resume a 1-rank checkpoint as 1 rank
# does, and 1 rank a 2-rank one; a rank with no rows of a batch still keeps in step; a
# rank that fails or dies ends the job with a message instead of a hang. Skipped without
# mpirun (openmpi-bin).
if ! command -v mpirun >/dev/null 2>&1; then
    echo "TAP version 13"
    echo "1..0 # SKIP no mpirun (install openmpi-bin: sh scripts/install-deps.sh)"
    exit 0
fi
. "$(dirname "$0")/lib.sh"

# Shared memory only (no probing for networks), no binding to cores the machine shares,
# root allowed as CI runs; a hang ends at the timeout and fails the test.
MPIRUN="timeout 120 mpirun -np 2 --oversubscribe --bind-to none --mca btl self,vader
--mca btl_vader_single_copy_mechanism none"
[ "$(id -u)" -eq 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
# Under `make check`, LeakSanitizer would report what Open MPI's libraries allocate
# when they start and never free; the 1-rank runs keep the leak check.
MPIRUN="$MPIRUN -x ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
STOP="--set hooks=tests/hooks/stop_every_20.lua --set train.log_every=1 --progress lines"

# two DIR ARGS...: aigc-run ARGS --out DIR on 1 rank (DIR/1) and 2 ranks (DIR/2).
two() {
    dir=$1
    shift
    run "$@" --out "$dir/1"
    is "$RC" 0 "1 rank: aigc-run $*"
    [ "$RC" -eq 0 ] || diag "$(cat "$ERR")"
    # shellcheck disable=SC2086 # MPIRUN is a command and its options
    $MPIRUN "$AIGC_RUN" "$@" --out "$dir/2" >"$OUT" 2>"$ERR"
    RC=$?
    is "$RC" 0 "2 ranks: aigc-run $*"
    [ "$RC" -eq 0 ] || diag "$(cat "$ERR")"
}

# agree DIR WHAT: the 1-rank and 2-rank runs' metrics rows and weights within 1e-5.
agree() {
    m=$(perl tests/cli/close.pl metrics "$1/1/metrics.jsonl" "$1/2/metrics.jsonl" 1e-5)
    ok $? "$2: the metrics rows agree within 1e-5 ($m)"
    w=$(perl tests/cli/close.pl weights "$1/1/last.safetensors" "$1/2/last.safetensors" 1e-5)
    ok $? "$2: the checkpoints' weights agree within 1e-5 ($w)"
}

# a) without mpirun nothing of MPI is loaded: the binary does not link it
ldd "$AIGC_RUN" | grep -q libmpi
ok $((!$?)) "aigc-run does not link libmpi (it loads it under mpirun only)"

# b) the GAN, 20 steps
two "$TMP/gan" specs/gan.yaml $STOP
is "$(grep -c '"kind":"step"' "$TMP/gan/2/metrics.jsonl")" 20 "2 ranks: rank 0 alone writes the 20 rows"
agree "$TMP/gan" "GAN, 20 steps"

# c) the VAE: an epoch of 20 steps of 450, with its test loss (the test split's batches
#    shared between the ranks), sample grids and checkpoint written by rank 0
two "$TMP/vae" specs/vae.yaml --epochs 1 --set data.batch=450 --progress lines
agree "$TMP/vae" "VAE, an epoch"
test1=$(json_field "$TMP/vae/1/metrics.jsonl" epoch 1 test_loss_per_image)
test2=$(json_field "$TMP/vae/2/metrics.jsonl" epoch 1 test_loss_per_image)
is "$test2" "$test1" "VAE: the evaluation split over 2 ranks gives the same test loss, to the bit"
[ -s "$TMP/vae/2/samples-epoch-001.png" ]
ok $? "VAE: rank 0 writes the epoch's sample grid"

# d) 2 ranks resume a 1-rank checkpoint (step 20) as 1 rank does, to step 40
mkdir -p "$TMP/res"
two "$TMP/res" specs/gan.yaml $STOP --resume "$TMP/gan/1"
agree "$TMP/res" "GAN, resumed from 1 rank at step 20"
is "$(grep -c '"kind":"step"' "$TMP/res/2/metrics.jsonl")" 40 "the resumed run carries the 20 rows before it"
perl tests/cli/close.pl weights "$TMP/gan/1/last.safetensors" "$TMP/res/2/last.safetensors" 1e-5 >/dev/null
ok $((!$?)) "the comparison can fail: step 20's weights are not step 40's"
# and 1 rank a 2-rank checkpoint
run specs/gan.yaml $STOP --resume "$TMP/gan/2" --out "$TMP/res/back"
is "$RC" 0 "1 rank resumes the 2-rank checkpoint"
w=$(perl tests/cli/close.pl weights "$TMP/res/1/last.safetensors" "$TMP/res/back/last.safetensors" 1e-5)
ok $? "GAN, resumed at 1 rank from 2 ranks at step 20: the weights agree within 1e-5 ($w)"

# e) a small DDPM: a timestep per sample (randint), noise like the images, EMA weights
two "$TMP/ddpm" tests/specs/tiny-ddpm.yaml $STOP
agree "$TMP/ddpm" "tiny DDPM, 20 steps"

# f) a batch of 1 leaves a rank (rank 0) without rows: it runs for the draws and adds nothing
two "$TMP/b1" specs/vae.yaml $STOP --set data.batch=1
agree "$TMP/b1" "VAE, batch 1 (rank 0 has no rows)"

# g) a rank that fails alone (its hook raises) ends the job, with its message
# shellcheck disable=SC2086
$MPIRUN "$AIGC_RUN" specs/gan.yaml --out "$TMP/fail" --progress lines --unsafe-hooks \
    --set hooks=tests/hooks/fail_on_rank1.lua >"$OUT" 2>"$ERR"
RC=$?
ok $((RC == 0 || RC == 124)) "a failing rank ends the job, not with a hang (exit $RC)"
grep -q "^rank 1 of 2: hook 'on_step' failed: tests/hooks/fail_on_rank1.lua:5: rank 1 gives up" "$ERR"
ok $? "the failing rank's message says which rank and why"

# h) a rank killed outright ends the job too
# shellcheck disable=SC2086
$MPIRUN "$AIGC_RUN" specs/gan.yaml --out "$TMP/kill" --progress lines >"$OUT" 2>"$ERR" &
mp=$!
rank=""
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    # Training has begun when rank 0 has opened the metrics; timeout runs mpirun, which
    # runs the ranks.
    if [ -e "$TMP/kill/metrics.jsonl" ]; then
        rank=$(pgrep -P "$(pgrep -P "$mp" -x mpirun)" | tail -n 1)
        [ -n "$rank" ] && break
    fi
    sleep 0.5
done
is "${rank:+found}" found "rank 1 of the job is running"
[ -n "$rank" ] && kill -9 "$rank"
start=$(date +%s)
wait "$mp"
RC=$?
took=$(($(date +%s) - start))
ok $((RC == 0 || RC == 124)) "a rank killed by SIGKILL ends the job (exit $RC)"
ok $((took > 30)) "promptly (${took} s)"

done_testing
