#!/bin/sh
# Text data and the character transformer: the data's errors at the spec's place, a
# short real training run on the small fixture text (the loss falls), eval in bits per
# character beside the unigram baseline, and exact resume for text like for images.
. "$(dirname "$0")/lib.sh"

S=tests/specs
GPT=$S/tiny-gpt.yaml

# The data's mistakes, each at the spec's place, exit code 1.
expect_error 1 "--set data.path=tests/data/nosuch: cannot load the text: tests/data/nosuch: No such file or directory (a relative path, read from the current directory $ROOT)" \
    check $GPT --set data.path=tests/data/nosuch
: >"$TMP/empty.txt"
expect_error 1 "--set data.path=$TMP/empty.txt: cannot load the text: $TMP/empty.txt: no text: the file is empty" \
    check $GPT --set data.path="$TMP/empty.txt"
mkdir "$TMP/emptydir"
expect_error 1 "--set data.path=$TMP/emptydir: cannot load the text: $TMP/emptydir: no text: the directory holds no non-empty regular files (hidden files, symlinks and *.dat are skipped)" \
    check $GPT --set data.path="$TMP/emptydir"
printf 'a short text' >"$TMP/short.txt"
expect_error 1 "--set data.path=$TMP/short.txt: $TMP/short.txt: the training split holds 11 bytes, fewer than one window of context + 1 = 17; use a smaller context or more text" \
    check $GPT --set data.path="$TMP/short.txt" --set data.test=0.1
expect_error 1 "--set data.path=$TMP/short.txt: $TMP/short.txt: the test split holds 1 bytes, fewer than one window of context + 1 = 5; raise data.test, or set it to 0 for no test split" \
    check $GPT --set data.path="$TMP/short.txt" --set data.context=4 --set data.test=0.1
expect_error 1 "$S/text-no-path.yaml:3:3: data: a text dataset needs a 'path' (a file, or a directory of files)" \
    check $S/text-no-path.yaml
expect_error 1 "--set data.test=0.7: 'test' must be a number in [0, 0.5], got '0.7'" check $GPT --set data.test=0.7
expect_error 1 "--set data.context=5: unknown key 'context' in 'data'" check $S/tiny-ae.yaml --set data.context=5
expect_error 1 "--set models.gpt.nodes.logits=linear(layer_norm(m1), vocabs): undefined name 'vocabs'; did you mean 'vocab'?" \
    check $GPT --set 'models.gpt.nodes.logits=linear(layer_norm(m1), vocabs)'
expect_error 1 "--set train.nll=los: 'nll' names 'los', which is not a logged value; did you mean 'loss'?" \
    check $GPT --set train.nll=los
expect_error 1 "$S/tiny-gpt.yaml:23:32: model 'gpt' expects input [B, 16], got [B, 32]" check $GPT --set data.context=32

# check reports what was read: the fixture directory's two texts (its copy of one, its
# .dat index and its symlink skipped).
run check $GPT
is "$(sed -n 1,2p "$OUT")" "data: text from tests/data/text: 2 files, 1975 bytes, a vocabulary of 41 bytes
  train 1775 bytes: 110 windows of 17; test 200 bytes: 12 windows" "check describes the corpus, its split and windows"

# A stack's layers take vocab by name too; a word that names nothing is refused at it.
run check $S/text-stack.yaml
like "$(sed -n 6,8p "$OUT")" "  embedding 41 32 *
  relu *
  linear 41 *" "a stack layer takes vocab: embedding 41 32, linear 41"
sed 's/linear vocab\]/linear vocabs]/' $S/text-stack.yaml >"$TMP/text-stack.yaml"
expect_error 1 "$TMP/text-stack.yaml:13:47: linear: 'out' must be a number, got 'vocabs'" check "$TMP/text-stack.yaml"

# A short real run: the loss falls, and the test split beats the unigram baseline.
run $GPT --out "$TMP/gpt" --progress lines
is "$RC" 0 "tiny-gpt trains on the fixture text"
first=$(json_field "$TMP/gpt/metrics.jsonl" epoch 1 train_loss)
last=$(json_field "$TMP/gpt/metrics.jsonl" epoch 3 train_loss)
less "$last" "$first"
ok $? "the training loss falls from epoch 1 ($first) to epoch 3 ($last)"
awk -v b="$(json_field "$TMP/gpt/metrics.jsonl" epoch 3 test_bits_per_char)" \
    -v l="$(json_field "$TMP/gpt/metrics.jsonl" epoch 3 test_loss)" 'BEGIN { d = l / log(2) - b; exit !(b > 0 && d < 1e-6 && d > -1e-6) }'
ok $? "the epoch rows hold the test loss in bits per character"
run eval $GPT --checkpoint "$TMP/gpt"
is "$RC" 0 "eval of tiny-gpt"
bpc=$(sed -n 's/^test_bits_per_char //p' "$OUT")
unigram=$(sed -n 's/^unigram_bits_per_char //p' "$OUT")
is "$(sed -n 's/ .*//p' "$OUT" | tr '\n' ' ')" "test_loss test_bits_per_char unigram_bits_per_char windows characters " \
    "eval reports the loss, bits per character, the unigram baseline and the sizes"
is "$(sed -n 's/^characters //p' "$OUT")" 192 "12 test windows of 16 targets"
loss=$(sed -n 's/^test_loss //p' "$OUT")
awk -v l="$loss" -v b="$bpc" 'BEGIN { d = l / log(2) - b; exit !(d < 1e-3 && d > -1e-3) }'
ok $? "bits per character are the test loss in nats / ln 2 ($loss, $bpc)"
less "$bpc" "$unigram"
ok $? "the model beats the unigram baseline ($bpc < $unigram bits per character)"
run eval $GPT --checkpoint "$TMP/gpt" --json
like "$(cat "$OUT")" '{"test_loss":*,"test_bits_per_char":*,"unigram_bits_per_char":*,"windows":12,"characters":192}' \
    "eval --json holds the same"
expect_error 1 "$S/tiny-gpt.yaml:6:9: the data has no test split (data.test is 0)" \
    eval $GPT --checkpoint "$TMP/gpt" --set data.test=0

# Exact resume: 2 epochs, then the 3rd from the checkpoint, ends as 3 in one go.
run $GPT --out "$TMP/gpt2" --progress lines --epochs 2
run $GPT --out "$TMP/gpt2" --progress lines --resume
is "$RC" 0 "a text run resumes"
strip() { sed -n '/"kind":"epoch","epoch":3,/p' "$1" | sed 's/"seconds":[0-9.]*,//'; }
is "$(strip "$TMP/gpt2/metrics.jsonl")" "$(strip "$TMP/gpt/metrics.jsonl")" \
    "the resumed run's third epoch is the uninterrupted run's"
cmp -s "$TMP/gpt/last.safetensors" "$TMP/gpt2/last.safetensors"
ok $? "and its weights are the same, bit for bit"

# specs/char-gpt.yaml itself, on the fixture text for two short epochs: it trains, its
# loss falls, and its sample section writes printable texts that start with the prompt.
run specs/char-gpt.yaml --set data.path=tests/data/text --set data.test=0.25 --epochs 2 --out "$TMP/cg" \
    --progress lines --set sample.inputs.length=20 --set sample.count=2
is "$RC" 0 "specs/char-gpt.yaml trains on the fixture text"
less "$(json_field "$TMP/cg/metrics.jsonl" epoch 2 train_loss)" "$(json_field "$TMP/cg/metrics.jsonl" epoch 1 train_loss)"
ok $? "its loss falls"
is "$(grep -c '^The ' "$TMP/cg/samples-epoch-002.txt")" 2 "its two texts continue the prompt"
is "$(grep -v '^--- sample' "$TMP/cg/samples-epoch-002.txt" | tr -d '\n' | LC_ALL=C tr -d '[:print:]' | wc -c)" 0 \
    "and are printable"

# Sampling from a prompt: the spec's loop draws byte by byte; the texts go to stdout.
run sample $GPT --checkpoint "$TMP/gpt" --prompt "A stitch" --length 30 --temperature 0.5 -n 3
is "$RC" 0 "sample from a prompt"
is "$(grep -c '^--- sample [123] of 3$' "$OUT")" 3 "three texts, each after its header line"
is "$(grep -c '^A stitch' "$OUT")" 3 "each text starts with the prompt"
printable=$(grep -v '^--- sample' "$OUT" | tr -d '\n' | LC_ALL=C tr -d '[:print:]' | wc -c)
is "$printable" 0 "the texts are printable"
run sample $GPT --checkpoint "$TMP/gpt" --prompt "A stitch" --length 30 --temperature 0.5 -n 3
cp "$OUT" "$TMP/first.txt"
run sample $GPT --checkpoint "$TMP/gpt" --prompt "A stitch" --length 30 --temperature 0.5 -n 3 -o "$TMP/s.txt"
is "$(cat "$OUT")" "$TMP/s.txt" "-o writes the texts to a file and prints its name"
cmp -s "$TMP/s.txt" "$TMP/first.txt"
ok $? "the same seed draws the same texts"
# Without the corpus: the section starts from a test window, so it needs the corpus;
# started from zeros instead, the checkpoint's record of the vocabulary (its bytes in
# token order) encodes the prompt and decodes the same texts as the corpus does.
expect_error 1 "--set data.path=$TMP/nocorpus: cannot load the text: $TMP/nocorpus: No such file or directory (sample section 'sample' reads the test split)" \
    sample $GPT --checkpoint "$TMP/gpt" --prompt "A stitch" --set data.path="$TMP/nocorpus"
ZEROS="sample.steps.0=window = slice(concat(zeros(n, context), prompt, axis=1), -context, axis=1)"
run sample $GPT --checkpoint "$TMP/gpt" --prompt "A stitch" --length 30 -n 3 --set "$ZEROS"
cp "$OUT" "$TMP/zeros.txt"
run sample $GPT --checkpoint "$TMP/gpt" --prompt "A stitch" --length 30 -n 3 --set "$ZEROS" \
    --set data.path="$TMP/nocorpus"
is "$RC" 0 "a section that reads no test window samples without the corpus"
grep -q '^A stitch' "$TMP/zeros.txt" && cmp -s "$OUT" "$TMP/zeros.txt"
ok $? "... the texts drawn with the corpus"
expect_error 1 "--prompt Zebra: the byte 'Z' (0x5a) at offset 0 is not in the vocabulary of $TMP/nocorpus (41 bytes)" \
    sample $GPT --checkpoint "$TMP/gpt" --prompt Zebra --set "$ZEROS" --set data.path="$TMP/nocorpus"
# Replaced whole or not at all: a directory in the way leaves no temporary file.
mkdir "$TMP/taken.txt"
expect_error 1 "$TMP/taken.txt: cannot write: Is a directory" \
    sample $GPT --checkpoint "$TMP/gpt" --prompt "A stitch" --length 5 -o "$TMP/taken.txt"
[ ! -e "$TMP/taken.txt.tmp" ]
ok $? "and no temporary file is left"
ls "$TMP/gpt"/samples-epoch-003.txt >/dev/null 2>&1
ok $? "training writes the section's texts after each epoch"

# Sampling's mistakes.
expect_error 1 "--prompt Zebra: the byte 'Z' (0x5a) at offset 0 is not in the vocabulary of tests/data/text (41 bytes)" \
    sample $GPT --checkpoint "$TMP/gpt" --prompt Zebra
euro=$(printf '\342\202\254')
expect_error 1 "--input prompt=a$euro: the byte 0xe2 at offset 1 is not in the vocabulary of tests/data/text (41 bytes)" \
    sample $GPT --checkpoint "$TMP/gpt" --input "prompt=a$euro"
expect_error 1 "$S/tiny-gpt.yaml:31:5: input 'prompt': the byte 'Z' (0x5a) at offset 0 is not in the vocabulary of tests/data/text (41 bytes)" \
    sample $GPT --checkpoint "$TMP/gpt" --set "sample.inputs.prompt.text=Zebra"
expect_error 1 "--prompt '': input 'prompt' is empty: give at least one character" \
    sample $GPT --checkpoint "$TMP/gpt" --prompt ""
# An error a command-line input causes in the spec's expression ends with the input.
expect_error 1 "$S/tiny-gpt.yaml:37:22: zeros: 'size' must be a whole number in [1, 16777216] (sample section 'sample' with n = 3, --length 2.5)" \
    sample $GPT --checkpoint "$TMP/gpt" --length 2.5 -n 3
# A number input's range (temperature: {number: 0.8, range: [0.01, 10]}) holds what
# the command line gives and the spec's default; its bounds are allowed.
expect_error 2 "aigc-run: --temperature -1: 'temperature' must be in [0.01, 10] (the spec's range), got '-1'" \
    sample $GPT --checkpoint "$TMP/gpt" --temperature -1
expect_error 2 "aigc-run: --input temperature=0: 'temperature' must be in [0.01, 10] (the spec's range), got '0'" \
    sample $GPT --checkpoint "$TMP/gpt" --input temperature=0
run sample $GPT --checkpoint "$TMP/gpt" --prompt "A stitch" --length 5 --temperature 10 -n 2
is "$RC,$(grep -c '^A stitch' "$OUT")" 0,2 "--temperature 10, the range's bound, draws"
expect_error 1 "--set sample.inputs.temperature.number=20: 'temperature' must be a number in [0.01, 10], got '20'" \
    check $GPT --set sample.inputs.temperature.number=20
expect_error 1 "--set sample.inputs.temperature.range=[1, 0]:1:39: 'range' must have low < high" \
    check $GPT --set "sample.inputs.temperature.range=[1, 0]"
expect_error 1 "--set sample.inputs.prompt={text: a, range: [0, 1]}:1:45: input 'prompt': 'range' goes with a number's default, like {number: 0.8, range: [0.01, 10]}" \
    check $GPT --set "sample.inputs.prompt={text: a, range: [0, 1]}"
expect_error 1 "--set sample.loop.to=window: loop: 'to' must come to a whole number in [-16777216, 16777216], not a tensor" \
    check $GPT --set sample.loop.to=window
expect_error 1 "$S/tiny-gpt.yaml:39:5: loop: 'by' -1 never goes from 0 to 39" check $GPT --set sample.loop.by=-1
expect_error 1 "$S/tiny-gpt.yaml:46:9: sample: a section gives 'image' or 'text', not both" \
    check $GPT --set sample.image=out
expect_error 1 "$S/tiny-gpt.yaml:31:13: input 'prompt': either 'image', 'text' or 'number', not two" \
    check $GPT --set sample.inputs.prompt.image=x.png
expect_error 1 "--set sample.inputs.tokens=1: input 'tokens': the section already has 'tokens'; choose another name" \
    check $GPT --set sample.inputs.tokens=1
{ sed -n '1,30p' $GPT; printf '    prompt: {text: "'; head -c 1048577 /dev/zero | tr '\0' a; printf '"}\n'
    sed -n '32,$p' $GPT; } >"$TMP/huge.yaml"
expect_error 1 "$TMP/huge.yaml:31:5: input 'prompt' is longer than 1048576 bytes" check "$TMP/huge.yaml"
run sample $GPT --checkpoint "$TMP/gpt" --prompt "$(head -c 20000 /dev/zero | tr '\0' a)"
is "$ERR1" "aigc-run: --prompt: the value is too long" "a --prompt of 20000 bytes: message"
is "$RC" 2 "a --prompt of 20000 bytes: exit code 2"
expect_error 1 "$S/text-input-images.yaml:15:5: input 'prompt' is text, but the data are images; text needs dataset: text and its vocabulary" \
    check $S/text-input-images.yaml
expect_error 1 "$S/text-input-images.yaml:16:9: sample: 'text' needs dataset: text, whose vocabulary turns token ids into bytes" \
    check $S/text-input-images.yaml --set sample.inputs.prompt=1

# For images, train.nll is reported in nats per image (MADE's unit).
run $S/tiny-ae.yaml --out "$TMP/ae" --progress lines --set data.batch=500
run eval $S/tiny-ae.yaml --checkpoint "$TMP/ae" --set train.nll=loss
is "$(sed -n 's/ .*//p' "$OUT" | tr '\n' ' ')" "test_loss test_nats_per_image " "eval names train.nll's value in nats per image"
run eval $S/tiny-ae.yaml --checkpoint "$TMP/ae" --set train.nll=loss --json
like "$(cat "$OUT")" '{"test_loss":*,"test_nats_per_image":*,"images":1000}' "and in JSON"

done_testing
