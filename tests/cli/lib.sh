# lib.sh — TAP (version 13) for the command-line tests; sourced by tests/cli/*.t.
#
#     . "$(dirname "$0")/lib.sh"
#     expect_error 1 'tests/specs/x.yaml:6:1: unknown key ...' check tests/specs/x.yaml
#     run check specs/gan.yaml        # sets RC, OUT, ERR (files) and ERR1 (first line)
#     is "$RC" 0 "check exits 0"
#     done_testing                    # the plan; exit 1 when a check failed
#
# Tests run from the top of the tree, so spec paths in messages read tests/specs/...,
# and use "$AIGC_RUN" (exported by `make test`), else ./aigc-run.

set -u
case ${AIGC_RUN:-} in
*/*) AIGC_RUN=$(cd "$(dirname "$AIGC_RUN")" && pwd)/$(basename "$AIGC_RUN") ;; # some tests cd
esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
AIGC_RUN=${AIGC_RUN:-$ROOT/aigc-run}
# As `make test` runs them: no run reads the cache of inflated data an earlier one left
# (tests/cli/data-cache.t gives it a directory of its own).
AIGC_CACHE=${AIGC_CACHE:-off}
export AIGC_CACHE
TMP=$(mktemp -d "${TMPDIR:-/tmp}/aigc-cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' HUP INT TERM

tap_count=0
tap_failed=0

echo "TAP version 13"
if [ ! -x "$AIGC_RUN" ]; then
    echo "Bail out! no aigc-run binary at $AIGC_RUN (run make first)"
    exit 1
fi

# Lines of text as TAP diagnostics.
diag() {
    printf '%s\n' "$@" | sed 's/^/# /'
}

pass() {
    tap_count=$((tap_count + 1))
    echo "ok $tap_count - $1"
}

fail() {
    tap_count=$((tap_count + 1))
    tap_failed=$((tap_failed + 1))
    echo "not ok $tap_count - $1"
}

# ok STATUS DESCRIPTION: passes when STATUS is 0, as in `[ -s f ]; ok $? "f written"`.
ok() {
    if [ "$1" -eq 0 ]; then pass "$2"; else fail "$2"; fi
}

# is GOT WANT DESCRIPTION: exact equality.
is() {
    if [ "$1" = "$2" ]; then
        pass "$3"
    else
        fail "$3"
        diag "     got: '$1'" "expected: '$2'"
    fi
}

# like GOT PATTERN DESCRIPTION: a shell pattern (case), matching the whole text.
like() {
    # shellcheck disable=SC2254 # $2 is a pattern on purpose
    case $1 in
    $2) pass "$3" ;;
    *)
        fail "$3"
        diag "     got: '$1'" "expected: '$2'"
        ;;
    esac
}

# run ARGS...: runs aigc-run; sets RC, ERR1 (the first line of stderr), and leaves the
# output in the files $OUT and $ERR.
OUT=$TMP/stdout
ERR=$TMP/stderr
run() {
    "$AIGC_RUN" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    ERR1=$(sed -n 1p "$ERR")
}

# exits_0 DESCRIPTION: the last run exited 0; if not, its stderr goes to the TAP output.
exits_0() {
    is "$RC" 0 "$1"
    if [ "$RC" -ne 0 ]; then diag "$(cat "$ERR")"; fi
}

# expect_error CODE FIRST_LINE ARGS...: aigc-run ARGS exits CODE, with FIRST_LINE as the
# first line on stderr and nothing on stdout (results go there; errors do not).
expect_error() {
    want_rc=$1 want_line=$2
    shift 2
    run "$@"
    is "$ERR1" "$want_line" "aigc-run $*: message"
    is "$RC" "$want_rc" "aigc-run $*: exit code $want_rc"
    if [ "$RC" -ne "$want_rc" ] || [ "$ERR1" != "$want_line" ]; then diag "stderr:" "$(cat "$ERR")"; fi
    [ ! -s "$OUT" ]
    ok $? "aigc-run $*: nothing on stdout"
}

# json_field FILE KIND EPOCH FIELD: the value of FIELD in the metrics row of that kind
# and epoch ("null" for a non-finite number, empty when absent).
json_field() {
    sed -n "/\"kind\":\"$2\",\"epoch\":$3,/p" "$1" | sed -n '$p' |
        sed -n "s/.*\"$4\":\([^,}]*\).*/\1/p"
}

# tensor_values FILE TENSOR: a float32 tensor of a safetensors file, one value a line.
tensor_values() {
    perl -e 'open my $f, "<", $ARGV[0] or die; binmode $f; read $f, my $n, 8;
        read $f, my $h, unpack("Q<", $n);
        $h =~ /"\Q$ARGV[1]\E":\{[^}]*"data_offsets":\[(\d+),(\d+)\]/ or die "no $ARGV[1]";
        seek $f, 8 + unpack("Q<", $n) + $1, 0; read $f, my $d, $2 - $1;
        printf "%.9g\n", $_ for unpack "f<*", $d' "$1" "$2"
}

# finite METRICS EPOCH LABEL FIELD...: each FIELD of the epoch's row in METRICS is a
# finite number (a check each, named LABEL, the field and its value).
finite() {
    fi_m=$1 fi_e=$2 fi_label=$3
    shift 3
    for fi_f in "$@"; do
        fi_v=$(json_field "$fi_m" epoch "$fi_e" "$fi_f")
        is_number "$fi_v"
        ok $? "$fi_label$fi_f is a finite number ($fi_v)"
    done
}

# falls METRICS NAME: epochs 1 and 2's means train_NAME and test_NAME in METRICS are
# finite numbers, and each falls from the first epoch to the second (three checks).
falls() {
    f_t1=$(json_field "$1" epoch 1 "train_$2") f_t2=$(json_field "$1" epoch 2 "train_$2")
    f_e1=$(json_field "$1" epoch 1 "test_$2") f_e2=$(json_field "$1" epoch 2 "test_$2")
    f_finite=0
    for v in "$f_t1" "$f_t2" "$f_e1" "$f_e2"; do is_number "$v" || f_finite=1; done
    ok $f_finite "$2: the epochs' losses are finite numbers"
    less "$f_t2" "$f_t1"
    ok $? "$2: the training loss falls: $f_t1, then $f_t2"
    less "$f_e2" "$f_e1"
    ok $? "$2: the test loss falls: $f_e1, then $f_e2"
}

# A finite JSON number (the metrics write null for NaN and infinities).
is_number() {
    printf '%s\n' "$1" | grep -Eq '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$'
}

# less A B: A < B as real numbers.
less() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'
}

done_testing() {
    echo "1..$tap_count"
    if [ "$tap_failed" -ne 0 ]; then
        diag "failed $tap_failed of $tap_count"
        exit 1
    fi
    exit 0
}
