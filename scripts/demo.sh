#!/usr/bin/env bash
# make demo: dartc end to end on built-in defaults — a tiny Qwen2-shaped model
# with the real Qwen2 vocabulary, the bundled HotpotQA corpus and questions.
set -euo pipefail
out=${1:-demo-out}
dartc=${DARTC:-bin/dartc}
step() { printf '\n== %s\n' "$*"; }

rm -rf "$out"
mkdir -p "$out"

step "1. a tiny Qwen2-shaped model with the full Qwen2 vocabulary (float32, KV cache)"
$dartc models synth --preset tiny --vocab 151936 --kv-cache -o "$out/model"

step "2. compile: dual gated LoRA (reason, tool), decode / logprobs / train / adamw graphs"
$dartc compile "$out/model/model.onnx" -o "$out/compiled" --rank 8 --alpha 16
$dartc inspect "$out/compiled/train.onnx" | sed -n '1,3p'

step "3. gradients of train.onnx against central differences (float64 copy of the model)"
$dartc models synth --preset tiny --layers 1 --dtype float64 -o "$out/model-f64"
$dartc compile "$out/model-f64/model.onnx" -o "$out/compiled-f64" --rank 4
$dartc gradcheck "$out/compiled-f64" --samples 1 --top 3

step "4. the search index over the bundled HotpotQA paragraphs"
$dartc search index --corpus data/demo/corpus.jsonl --format title-text -o "$out/hotpotqa.bm25"
$dartc search query --index "$out/hotpotqa.bm25" --topk 2 "Party Never Ends is an album by the Romanian singer who studied at what college?"

step "5. greedy decoding through decode.onnx with the KV cache"
$dartc run "$out/compiled" --steps 8 --prompt-ids "151644 872 198"

step "6. GRPO with DART's dual adapters: Search-R1 rollouts against the index, EM reward (2 short steps)"
$dartc train --model "$out/compiled" --data data/demo/hotpotqa_val.jsonl --search "$out/hotpotqa.bm25" \
  -o "$out/run" --steps 2 --prompts 2 --group 2 --max-turns 1 --max-turn-tokens 16 --lr 1e-3 --no-progress
$dartc plot "$out/run"

step "7. evaluation: greedy agent rollouts, the paper-shaped table"
$dartc eval --model "$out/compiled" --adapters "$out/run/checkpoints/step-000002/adapters.safetensors" \
  --data data/demo/nq_test.jsonl,data/demo/bamboogle.jsonl,data/demo/hotpotqa_val.jsonl --limit 8 \
  --search "$out/hotpotqa.bm25" --max-turns 1 --max-turn-tokens 24 -o "$out/eval" --quiet

step "8. the tool adapter as a Hugging Face PEFT directory"
$dartc export-peft "$out/run/checkpoints/step-000002/adapters.safetensors" --role tool -o "$out/peft-tool"

cat <<EOF

demo: outputs are in $out/
  $out/compiled/          decode.onnx logprobs.onnx train.onnx adamw.onnx adapters.safetensors manifest.json
  $out/hotpotqa.bm25      the BM25 index
  $out/run/               metrics.jsonl, checkpoints/, plots/*.png
  $out/eval/              predictions.jsonl, table.md / .csv / .json
  $out/peft-tool/         adapter_config.json, adapter_model.safetensors
The model is a random tiny one, so rewards and EM stay near zero: the demo shows the
pipeline, not learning (see docs/training.md for the learning-signal test).
EOF
