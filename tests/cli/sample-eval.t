#!/bin/sh
# aigc-run sample and eval from a checkpoint of specs/vae.yaml (one epoch): the grid's
# PNG and its size, the seed, the test loss (the run's own figure, as lines or JSON);
# usage errors; a missing, truncated or corrupt checkpoint; and --init, a new run that
# starts from the checkpoint's weights.
. "$(dirname "$0")/lib.sh"

# A PNG's size from its IHDR: WIDTHxHEIGHT.
png_size() {
    od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", (($1 * 256 + $2) * 256 + $3) * 256 + $4, (($5 * 256 + $6) * 256 + $7) * 256 + $8 }'
}
is_png() {
    [ "$(od -An -tx1 -N8 "$1" 2>/dev/null | tr -d ' ')" = 89504e470d0a1a0a ]
}

VAE="specs/vae.yaml --progress lines --set train.log_every=10"
# shellcheck disable=SC2086 # $VAE is a list of arguments
run $VAE --epochs 1 --out "$TMP/vae"
is "$RC" 0 "one epoch of specs/vae.yaml exits 0"
CK=$TMP/vae

# sample: a PNG grid of 28x28 images 2 pixels apart, so N columns are 30N + 2 wide
run sample specs/vae.yaml --checkpoint "$CK" -o "$TMP/64.png"
is "$RC" 0 "sample exits 0"
is "$(cat "$OUT")" "$TMP/64.png" "sample prints the file it wrote"
is_png "$TMP/64.png"
ok $? "sample writes a PNG"
is "$(png_size "$TMP/64.png")" 242x242 "the prior section's 64 images: an 8x8 grid, 242x242"
run sample specs/vae.yaml --checkpoint "$CK" -n 16 -o "$TMP/16.png"
is "$RC" 0 "sample -n 16 exits 0"
is_png "$TMP/16.png" && [ "$(png_size "$TMP/16.png")" = 122x122 ]
ok $? "sample -n 16: a 4x4 grid, 122x122 (got $(png_size "$TMP/16.png"))"
run sample specs/vae.yaml --checkpoint "$CK" -n 16 --set sample.prior.grid=4x4 -o "$TMP/16g.png"
is "$(png_size "$TMP/16g.png")" 122x122 "sample -n 16 with a 4x4 grid: 122x122"
! cmp -s "$TMP/16.png" "$TMP/64.png"
ok $? "-n 16 draws another grid than the default 64"
# -n is the drawn section's count: the interpolation section, which splits its n test
# images into pairs, is not built with 9 for the prior's grid.
run sample specs/vae.yaml --checkpoint "$CK" -n 9 -o "$TMP/9.png"
is "$RC,$(png_size "$TMP/9.png")" 0,92x92 "sample -n 9: the prior's 9 images in a 3x3 grid (an odd count)"
expect_error 1 "specs/vae.yaml:40:16: split: 9 elements along axis 0 do not split into 2 equal parts (sample section 'interpolation' with n = 9)" \
    sample specs/vae.yaml --checkpoint "$CK" -n 9 --section interpolation
expect_error 2 "aigc-run: -n expects a whole number in [1, 4096], got '5000'" \
    sample specs/vae.yaml --checkpoint "$CK" -n 5000
run sample specs/vae.yaml --checkpoint "$CK" --section reconstruction -o "$TMP/rec.png"
is "$RC,$(png_size "$TMP/rec.png")" 0,242x242 "--section reconstruction: 32 test images and their reconstructions, 8x8"
expect_error 1 "specs/vae.yaml: no sample section 'interpolatoin'; did you mean 'interpolation'?" \
    sample specs/vae.yaml --checkpoint "$CK" --section interpolatoin
expect_error 1 "specs/vae.yaml: no sample section 'walk' (the spec's: prior, reconstruction, interpolation, latent)" \
    sample specs/vae.yaml --checkpoint "$CK" --section walk

# Without the data set: the checkpoint's record of it (28x28 images, 10 classes) builds
# the program; only a section that draws test images needs the data.
NODATA="--set data.path=$TMP/nodata"
# shellcheck disable=SC2086 # $NODATA is a list of arguments
run sample specs/vae.yaml --checkpoint "$CK" $NODATA -o "$TMP/nodata.png"
is "$RC" 0 "sample without the data set exits 0"
cmp -s "$TMP/nodata.png" "$TMP/64.png"
ok $? "... and draws the grid drawn with it"
# shellcheck disable=SC2086
expect_error 1 "--set data.path=$TMP/nodata: cannot load the training data: $TMP/nodata: No such file or directory (sample section 'reconstruction' reads the test split)" \
    sample specs/vae.yaml --checkpoint "$CK" $NODATA --section reconstruction
# A checkpoint without the record (written before it was kept): the data's error.
cp -R "$CK" "$TMP/norecord"
LC_ALL=C sed -i 's/"data":"28x28 10"/"dat0":"28x28 10"/' "$TMP/norecord/last.safetensors"
# shellcheck disable=SC2086
expect_error 1 "--set data.path=$TMP/nodata: cannot load the training data: $TMP/nodata: No such file or directory" \
    sample specs/vae.yaml --checkpoint "$TMP/norecord" $NODATA
run sample specs/vae.yaml --checkpoint "$TMP/norecord" -o "$TMP/norecord.png"
cmp -s "$TMP/norecord.png" "$TMP/64.png"
ok $? "... which samples as before with the data set"

# the seed: the same one reproduces the grid, another changes it
run sample specs/vae.yaml --checkpoint "$CK" --seed 7 -o "$TMP/seed7a.png"
run sample specs/vae.yaml --checkpoint "$CK" --seed 7 -o "$TMP/seed7b.png"
run sample specs/vae.yaml --checkpoint "$CK" --seed 8 -o "$TMP/seed8.png"
is_png "$TMP/seed7a.png" && cmp -s "$TMP/seed7a.png" "$TMP/seed7b.png"
ok $? "--seed 7 twice: the same grid, byte for byte"
is_png "$TMP/seed8.png" && ! cmp -s "$TMP/seed7a.png" "$TMP/seed8.png" && ! cmp -s "$TMP/seed7a.png" "$TMP/64.png"
ok $? "--seed 8, and the spec's seed 0: other grids"

# eval: the test loss per image, the figure the run logged for its epoch
want=$(json_field "$CK/metrics.jsonl" epoch 1 test_loss_per_image)
is_number "$want"
ok $? "the run logged a test loss ($want)"
run eval specs/vae.yaml --checkpoint "$CK"
is "$RC" 0 "eval exits 0"
is "$(cat "$OUT")" "test_loss_per_image $(awk -v v="$want" 'BEGIN { printf "%.6g", v }')" \
    "eval prints test_loss_per_image, the run's own test loss"
run eval specs/vae.yaml --checkpoint "$CK/last.safetensors" --json
is "$RC" 0 "eval --json exits 0"
is "$(cat "$OUT")" "{\"test_loss_per_image\":$want,\"images\":1000}" \
    "eval --json prints one object: the test loss and images 1000"
# --checkpoint names a checkpoint as --resume does: with or without its ending.
cp "$CK/last.safetensors" "$TMP/weights.bin"
for f in last last.state weights.bin; do
    [ "$f" = weights.bin ] && from=$TMP/$f || from=$CK/$f
    run sample specs/vae.yaml --checkpoint "$from" -o "$TMP/as-$f.png"
    cmp -s "$TMP/as-$f.png" "$TMP/64.png"
    ok $? "--checkpoint ${from#"$TMP"/}: the grid of --checkpoint DIR"
done

# A grid is a PNG: -o with another image type's ending, or '-' (stdout, for texts), is
# refused before anything is drawn; a name without an ending is taken as it is.
for o in walk.jpg -; do
    expect_error 1 "-o $o: sample section 'prior' draws images, written as PNG: name a file ending in .png" \
        sample specs/vae.yaml --checkpoint "$CK" -o "$o"
done
[ ! -e walk.jpg ] && [ ! -e ./- ]
ok $? "... and writes no file"
run sample specs/vae.yaml --checkpoint "$CK" -o "$TMP/grid"
is "$RC,$(cat "$OUT")" "0,$TMP/grid" "-o NAME without an ending writes the PNG there"
is_png "$TMP/grid"
ok $? "... a PNG"

# Without --checkpoint, sample and eval read the spec's run: runs/NAME/last.
run eval specs/vae.yaml --checkpoint "$CK" --json
cp "$OUT" "$TMP/eval-ck.json"
mkdir -p "$TMP/cwd/runs" "$TMP/cwd-empty"
ln -s "$ROOT/data" "$TMP/cwd/data"
ln -s "$ROOT/data" "$TMP/cwd-empty/data"
ln -s "$CK" "$TMP/cwd/runs/vae"
cd "$TMP/cwd" || exit 1
run eval "$ROOT/specs/vae.yaml" --json
is "$RC,$(cat "$OUT")" "0,$(cat "$TMP/eval-ck.json")" "eval without --checkpoint: runs/vae's figures"
run sample "$ROOT/specs/vae.yaml" -o "$TMP/dflt.png"
cmp -s "$TMP/dflt.png" "$TMP/64.png"
ok $? "sample without --checkpoint: runs/vae's grid"
cd "$TMP/cwd-empty" || exit 1
for c in eval sample; do
    expect_error 1 "runs/vae/last.safetensors: cannot open: No such file or directory (train it first: aigc-run $ROOT/specs/vae.yaml, or give --checkpoint)" \
        $c "$ROOT/specs/vae.yaml"
done
[ ! -e samples.png ]
ok $? "... and writes no grid"
# A misspelt --section is the mistake named, before the weights are looked for.
expect_error 1 "$ROOT/specs/vae.yaml: no sample section 'priors'; did you mean 'prior'?" \
    sample "$ROOT/specs/vae.yaml" --section priors
cd "$ROOT" || exit 1

# usage errors
expect_error 2 "aigc-run: --resume and --init exclude each other" specs/vae.yaml --init "$CK" --resume "$CK"

# a missing, truncated or corrupt checkpoint: exit 1, the message starts with its path
F=$TMP/missing.safetensors
expect_error 1 "$F: cannot open: No such file or directory" eval specs/vae.yaml --checkpoint "$F"
F=$TMP/truncated.safetensors
head -c 100000 "$CK/last.safetensors" >"$F"
run eval specs/vae.yaml --checkpoint "$F"
is "$RC" 1 "a truncated checkpoint: exit 1"
like "$ERR1" "$F: tensor 'encoder.0.weight': data_offsets * run past the data section *" \
    "a truncated checkpoint: the message names the file and the tensor that runs past its end"
F=$TMP/flipped.safetensors
cp "$CK/last.safetensors" "$F"
printf 'XX' | dd of="$F" bs=1 seek=12 conv=notrunc 2>/dev/null # "__metadata__" -> "__XXtadata__"
run sample specs/vae.yaml --checkpoint "$F" -o "$TMP/flipped.png"
is "$RC" 1 "a corrupt header: exit 1"
like "$ERR1" "$F: *" "a corrupt header: the message starts with the file"
[ ! -e "$TMP/flipped.png" ] && [ ! -s "$OUT" ]
ok $? "a corrupt checkpoint: no grid written, nothing on stdout"

# --init: a new run from the checkpoint's weights starts far lower than one from scratch
# shellcheck disable=SC2086
run $VAE --epochs 1 --out "$TMP/init" --init "$CK"
is "$RC" 0 "--init DIR exits 0"
scratch=$(sed -n 1p "$CK/metrics.jsonl" | sed -n 's/.*"loss_per_image":\([^,}]*\).*/\1/p')
init=$(sed -n 1p "$TMP/init/metrics.jsonl" | sed -n 's/.*"loss_per_image":\([^,}]*\).*/\1/p')
less "$init" "$(awk -v v="$scratch" 'BEGIN { print v * 0.7 }')"
ok $? "at step 10, the loss from the trained weights is under 70% of the loss from scratch ($init vs $scratch)"
e_scratch=$(json_field "$CK/metrics.jsonl" epoch 1 train_loss_per_image)
e_init=$(json_field "$TMP/init/metrics.jsonl" epoch 1 train_loss_per_image)
less "$e_init" "$(awk -v v="$e_scratch" 'BEGIN { print v * 0.85 }')"
ok $? "the first epoch's mean loss is lower by more than 15% ($e_init vs $e_scratch)"

done_testing
