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

echo
echo "demo: outputs are in $out/"
