#!/usr/bin/env bash
# Regenerates the tiny Qwen2.5 fixtures in testdata/tiny-qwen2.5/ from scratch, deterministically:
# creates .venv (Python 3.11) with the pinned requirements, exports the --tiny-random model with both
# exporters (TorchScript inline, dynamo with external data), then computes the PyTorch references.
# Running it twice gives byte-identical files; `git diff --stat testdata/` after it should be empty.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
VENV=.venv
OUT=testdata/tiny-qwen2.5

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt

export PYTHONHASHSEED=0 CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1
mkdir -p "$OUT"
"$VENV/bin/python" export_qwen2.py --tiny-random --seed 0 --exporter torchscript --external-data never \
  -o "$OUT/torchscript" --config-out "$OUT/config.json"
"$VENV/bin/python" export_qwen2.py --tiny-random --seed 0 --exporter dynamo --external-data always \
  -o "$OUT/dynamo" --config-out "$OUT/config.json"
# the same model exported without the exporters' graph optimizations: compile must fold what they leave
"$VENV/bin/python" export_qwen2.py --tiny-random --seed 0 --exporter torchscript --external-data never --no-optimize \
  -o "$OUT/torchscript-nofold" --config-out "$OUT/config.json"
"$VENV/bin/python" export_qwen2.py --tiny-random --seed 0 --exporter dynamo --external-data always --no-optimize \
  -o "$OUT/dynamo-noopt" --config-out "$OUT/config.json"
"$VENV/bin/python" make_reference.py --fixture-dir "$OUT" --seed 0
"$VENV/bin/python" make_autocast_reference.py --fixture-dir "$OUT" --seed 0
ls -l "$OUT" "$OUT/torchscript" "$OUT/dynamo" "$OUT/torchscript-nofold" "$OUT/dynamo-noopt"
