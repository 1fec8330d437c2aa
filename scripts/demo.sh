#!/usr/bin/env bash
# make demo: dartc end to end on the mini world — a tiny Qwen2 trained from
# scratch on Search-R1-format text over invented facts (models/mini), so that
# GRPO with DART visibly improves it within minutes on a CPU.
set -euo pipefail
out=${1:-demo-out}
dartc=${DARTC:-bin/dartc}
config=${DEMO_CONFIG:-models/mini/grpo-demo.yaml}
data=data/mini
step() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

# Replace only a folder an earlier demo made (it holds the marker) or an empty
# one: nothing else is deleted.
marker=.dartc-demo
if [ -e "$out" ] && [ ! -f "$out/$marker" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  echo "demo: $out exists and was not made by make demo; remove it or choose another: make demo DEMO=DIR" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"
touch "$out/$marker"

step "1. compile the mini model: dual gated LoRA (reason, tool), decode / logprobs / train / adamw graphs; its tokenizer comes along"
$dartc compile models/mini/model/model.onnx -o "$out/compiled" --rank 8 --alpha 16
$dartc inspect "$out/compiled/train.onnx" | sed -n '1,3p'

step "2. gradients of train.onnx against central differences (float64 copy of a tiny synthetic model)"
$dartc models synth --preset tiny --layers 1 --dtype float64 -o "$out/model-f64"
$dartc compile "$out/model-f64/model.onnx" -o "$out/compiled-f64" --rank 4
$dartc gradcheck "$out/compiled-f64" --samples 1 --top 3

step "3. the search index over the mini world's passages"
$dartc search index --corpus $data/corpus.jsonl --format title-text -o "$out/mini.bm25"
q=$(head -1 $data/test_2hop.jsonl | sed 's/.*"question":"\([^"]*\)".*/\1/')
echo "question: $q"
$dartc search query --index "$out/mini.bm25" --topk 2 "$(echo "$q" | sed 's/^In which country was \(.*\) born?$/\1/; s/^In which city is the company \(.*\) works for based?$/\1/')"

turns="--max-turns 2 --max-turn-tokens 48"
step "4. the base model on the held-out test questions (greedy agent rollouts, EM)"
$dartc eval --model "$out/compiled" --data $data/test_1hop.jsonl,$data/test_2hop.jsonl \
  --search "$out/mini.bm25" $turns -o "$out/eval-base" --quiet

step "5. GRPO with DART's dual adapters on the training questions ($config)"
$dartc train --model "$out/compiled" --data $data/train.jsonl --search "$out/mini.bm25" \
  --config "$config" -o "$out/run" --no-progress
$dartc plot "$out/run"
adapters=$(ls -d "$out"/run/checkpoints/step-* | tail -1)/adapters.safetensors

step "6. the trained adapters on the same test questions"
$dartc eval --model "$out/compiled" --adapters "$adapters" --data $data/test_1hop.jsonl,$data/test_2hop.jsonl \
  --search "$out/mini.bm25" $turns -o "$out/eval-trained" --quiet

step "7. the tool adapter as a Hugging Face PEFT directory"
$dartc export-peft "$adapters" --role tool -o "$out/peft-tool"

step "8. before and after"
go run ./models/mini/summary -base "$out/eval-base" -trained "$out/eval-trained" -run "$out/run" \
  -seconds $(( $(date +%s) - start )) -o "$out/summary.json"

cat <<EOF

demo: outputs are in $out/ ($(( $(date +%s) - start )) s)
  $out/summary.json       base_em, trained_em, test_questions, steps, seconds, intervals, sign test
  $out/compiled/          decode.onnx logprobs.onnx train.onnx adamw.onnx adapters.safetensors manifest.json tokenizer/
  $out/mini.bm25          the BM25 index of data/mini/corpus.jsonl
  $out/run/               metrics.jsonl, checkpoints/, plots/*.png (the reward curve: plots/reward.png)
  $out/eval-base/, $out/eval-trained/   predictions.jsonl, table.md / .csv / .json
  $out/peft-tool/         adapter_config.json, adapter_model.safetensors
EOF
