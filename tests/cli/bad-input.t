#!/bin/sh
# The bad-input corpus, tests/bad/ (docs/errors.md, "The bad-input corpus"): one case per
# tests/bad/CATEGORY/NAME.expect, which gives the command line, the exit code and the
# exact first line of stderr (progress lines aside). CATEGORY is yaml, expr, data, ckpt or
# hooks; the case's input is the file or directory of the same NAME beside it.
#
#     # what the case is
#     args: check tests/bad/yaml/anchor.yaml
#     exit: 1
#     message: tests/bad/yaml/anchor.yaml:3:7: anchors are not supported ('&d'); write the value out
#
# {tmp} in args stands for a temporary directory (a run's --out); in a message, {tmp} and
# {root} (the top of the tree, where the cases run) stand for those directories. The corpus must hold
# at least 50 cases, and 5 of each category.
. "$(dirname "$0")/lib.sh"

total=0
for cat in yaml expr data ckpt hooks; do
    n=0
    for e in tests/bad/"$cat"/*.expect; do
        [ -f "$e" ] || continue
        n=$((n + 1))
        args=$(sed -n 's/^args: //p' "$e" | sed "s|{tmp}|$TMP|g")
        want_rc=$(sed -n 's/^exit: //p' "$e")
        want=$(sed -n 's/^message: //p' "$e")
        # A data directory is read with the test split on a second thread when there
        # are two: the same message either way.
        threads=1
        [ "$cat" = data ] && threads="1 2"
        for t in $threads; do
            # shellcheck disable=SC2086 # args is a list of words, none with a space
            run $args --threads "$t"
            got=$(grep -av '^epoch [0-9]*/[0-9]* [0-9]*/[0-9]* ' "$ERR" | sed -n 1p |
                sed "s|$TMP|{tmp}|g; s|$ROOT|{root}|g")
            is "$got" "$want" "$e: the message (--threads $t)"
            is "$RC" "$want_rc" "$e: exit $want_rc (--threads $t)"
        done
    done
    less 4 "$n"
    ok $? "tests/bad/$cat holds $n cases (at least 5)"
    total=$((total + n))
done
less 49 "$total"
ok $? "the corpus holds $total cases (at least 50)"

done_testing
