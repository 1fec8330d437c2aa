#!/usr/bin/env bash
# Regenerates the mini model (models/mini/model/) from nothing but this
# repository: the world's training trajectories (worldgen), the tokenizer and
# the model (train_mini.py, CPU, seeded), the Hugging Face reference
# encodings, the ONNX export (models/export/export_qwen2.py, checked against
# PyTorch) and the reference logits. Needs Go, Python 3.11 and PyPI for the
# pinned venv (models/export/requirements.txt). `make mini-model` runs it.
#
#   VENV=DIR   use (or create) this venv instead of models/mini/.venv
#   STEPS=N    training steps (default: train_mini.py's, as committed)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${VENV:-models/mini/.venv}
out=models/mini/model
# The venv is (re)installed until it records the requirements' hash: an
# interrupted install or a changed pin is redone.
want=$(sha256sum models/export/requirements.txt | cut -c1-16)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
  [ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
  "$venv/bin/pip" install -r models/export/requirements.txt
  echo "$want" >"$venv/.requirements"
fi
py="$venv/bin/python"
work=$(mktemp -d "${TMPDIR:-/tmp}/mini-regen.XXXXXX")
trap 'rm -rf "$work"' EXIT

go run ./models/mini/worldgen -o data/mini -sft "$work/sft.jsonl"
nice "$py" models/mini/train_mini.py --sft "$work/sft.jsonl" --corpus data/mini/corpus.jsonl \
  --test data/mini/test.jsonl -o "$work/ckpt" ${STEPS:+--steps "$STEPS"} | tee "$work/train.out"
"$py" models/mini/tokenizer_reference.py --tokenizer "$work/ckpt/tokenizer.json" --sft "$work/sft.jsonl" \
  -o "$work/ckpt/tokenizer-reference.json"
"$py" models/export/export_qwen2.py --checkpoint "$work/ckpt" -o "$work/onnx" --external-data never

mkdir -p "$out.new"
cp "$work/onnx/model.onnx" "$work/onnx/config.json" "$out.new/"
cp "$work/ckpt/model.safetensors" "$work/ckpt/tokenizer.json" "$work/ckpt/tokenizer_config.json" \
  "$work/ckpt/train-log.jsonl" "$work/ckpt/reference-logits.json" "$work/ckpt/tokenizer-reference.json" "$out.new/"
cp models/mini/model/PROVENANCE.md "$out.new/" 2>/dev/null || true
rm -rf "$out.old"
[ -d "$out" ] && mv "$out" "$out.old"
chmod 644 "$out.new"/*
mv "$out.new" "$out"
rm -rf "$out.old"
echo "mini model written to $out"
