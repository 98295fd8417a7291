# bench-lib.sh — what scripts/bench.sh and scripts/bench-pytorch.sh share, sourced by
# both: their options, the median, and a command timed over several runs. The script
# sets `me` (its name in messages), `out` (its default output file) and `help_lines`
# (the last line of its header comment, which --help prints) before sourcing this.
# shellcheck shell=sh disable=SC2034,SC2154  # variables shared with the sourcing script

threads=2
reps=3
ddpm_steps=30

# bench_options "$@": --threads "1 2", --reps N, --ddpm-steps N, --out FILE, --help.
bench_options() {
    while [ $# -gt 0 ]; do
        case $1 in
        --threads) threads=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --ddpm-steps) ddpm_steps=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h | --help) sed -n "2,${help_lines}p" "$0"; exit 0 ;;
        *) echo "$me: unknown option '$1' (try --help)" >&2; exit 2 ;;
        esac
    done
}

# The median of the numbers on stdin, one a line.
median() { sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# The CPU time of the whole machine so far, in clock ticks, and the part of it that a
# virtual machine's host gave to others (steal: the 8th value of /proc/stat's cpu line).
cpu_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9}' /proc/stat; }

# timed_runs RATE COMMAND...: runs COMMAND $reps times under /usr/bin/time, its stdout
# in $tmp/out and its stderr in $tmp/err (shown, and the bench stopped, when it fails);
# after each run the function RATE reads those files and prints the samples per second.
# Leaves a line a run in $tmp/runs: wall seconds, peak RSS in KB, samples/s, the
# percentage of the machine's CPU time stolen by the host during the run (0 on a
# machine of its own; on a shared virtual machine, a run with much steal measured the
# neighbours as much as the code), and the command's CPU time over its wall time in
# percent (near 100 per thread when it had the cores to itself; less when other
# processes on the same machine took them).
timed_runs() {
    rate=$1
    shift
    : >"$tmp/runs"
    r=1
    while [ "$r" -le "$reps" ]; do
        before=$(cpu_ticks)
        /usr/bin/time -f '%e %M %P' -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" || {
            cat "$tmp/err" >&2
            exit 1
        }
        steal=$(echo "$before $(cpu_ticks)" | awk '{print ($3 > $1 ? 100 * ($4 - $2) / ($3 - $1) : 0)}')
        read -r wall rss cpu <"$tmp/time"
        echo "$wall $rss $($rate) $steal ${cpu%\%}" >>"$tmp/runs"
        r=$((r + 1))
    done
}

# run_median K: the median of column K of $tmp/runs (RSS, column 2, in MB).
run_median() { awk -v k="$1" '{print k == 2 ? $k / 1024 : $k}' "$tmp/runs" | median; }
