#!/bin/sh
# Sample sections with inputs (tests/specs/inputs.yaml): an image given with
# --input NAME=FILE.png, numbers with defaults, a default image file; the section
# chosen with --section; and every way of getting an input wrong.
. "$(dirname "$0")/lib.sh"

SPEC=tests/specs/inputs.yaml
run "$SPEC" --out "$TMP/run" --progress lines
is "$RC" 0 "training a spec whose required image inputs sit in sections not drawn each epoch"
CK=$TMP/run

sample() { run sample "$SPEC" --checkpoint "$CK" "$@"; }

sample --section echo --input picture=tests/data/digit.png -o "$TMP/echo.png"
is "$RC" 0 "--input picture=FILE: the image input is read"
sample --section echo --input picture=tests/data/digit.png -o "$TMP/echo2.png"
cmp -s "$TMP/echo.png" "$TMP/echo2.png"
ok $? "the same image gives the same grid"
sample --section echo --input picture=tests/data/mask-bottom.png -o "$TMP/other.png"
! cmp -s "$TMP/echo.png" "$TMP/other.png"
ok $? "another image gives another grid"
sample --section echo --input picture=tests/data/digit.png --input gain=0 -o "$TMP/gain0.png"
sample --section echo --input picture=tests/data/blank-32.png -o "$TMP/x.png"
sample --section echo --input picture=tests/data/mask-bottom.png --input gain=0 -o "$TMP/gain0b.png"
cmp -s "$TMP/gain0.png" "$TMP/gain0b.png" && ! cmp -s "$TMP/gain0.png" "$TMP/echo.png"
ok $? "--input gain=0 sets the number: every picture comes out black"
sample --section masked --input mask=tests/data/mask-bottom.png -o "$TMP/masked.png"
is "$RC" 0 "a default image file (picture) with a given mask"
sample --input mask=tests/data/mask-bottom.png --section masked -o "$TMP/masked2.png"
cmp -s "$TMP/masked.png" "$TMP/masked2.png"
ok $? "the options' order does not matter"

expect_error 1 "$SPEC:25:7: sample section 'echo' needs an image for its input 'picture': give --input picture=FILE.png" \
    sample "$SPEC" --checkpoint "$CK" --section echo
expect_error 1 "tests/data/blank-32.png: the image is 32x32, but the data's images are 28x28 (input 'picture')" \
    sample "$SPEC" --checkpoint "$CK" --section echo --input picture=tests/data/blank-32.png
expect_error 1 "$TMP/none.png: No such file or directory" \
    sample "$SPEC" --checkpoint "$CK" --section echo --input picture="$TMP/none.png"
expect_error 2 "aigc-run: --input nope=1: no sample section has an input 'nope'" \
    sample "$SPEC" --checkpoint "$CK" --input nope=1
expect_error 2 "aigc-run: --input gian=2: no sample section has an input 'gian'; did you mean 'gain'?" \
    sample "$SPEC" --checkpoint "$CK" --input gian=2
expect_error 2 "aigc-run: --input gain=abc: 'gain' is a number, got 'abc'" \
    sample "$SPEC" --checkpoint "$CK" --input gain=abc
# The options that stand for --input are named as typed, with what kind of spec they need.
expect_error 2 "aigc-run: --prompt Once: no sample section has an input 'prompt' (--prompt, --length and --temperature are for a text spec's sample section, like specs/char-gpt.yaml's)" \
    sample "$SPEC" --checkpoint "$CK" --prompt Once
expect_error 2 "aigc-run: --input gain=2: sample section 'prior' has no input 'gain'" \
    sample "$SPEC" --checkpoint "$CK" --section prior --input gain=2
expect_error 2 "aigc-run: --input gain: expected NAME=VALUE, like temperature=0.8" \
    sample "$SPEC" --checkpoint "$CK" --input gain

# A required image in a section drawn each epoch stops training before it starts.
expect_error 1 "$SPEC:25:7: sample section 'echo' needs an image for its input 'picture': give --input picture=FILE.png" \
    "$SPEC" --out "$TMP/run2" --set sample.echo.each_epoch=true
[ ! -e "$TMP/run2" ]
ok $? "... and writes no run directory"

# Declaring inputs (made wrong here with --set, so the messages name the override).
expect_error 1 "--set sample.echo.inputs.n=1: input 'n': the section already has 'n'; choose another name" \
    check "$SPEC" --set sample.echo.inputs.n=1
expect_error 1 "--set sample.echo.inputs.gain=loud: input 'gain' is a number (its default), {number: N, range: [LO, HI]}, {image: FILE} for an image, or {text: STRING} for text" \
    check "$SPEC" --set sample.echo.inputs.gain=loud
done_testing
