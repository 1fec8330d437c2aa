#!/usr/bin/env bash
# Compiles the models the tests compile, in every exporter form, and runs the
# ONNX reference checker (onnx.checker.check_model, full_check=True) over every
# emitted graph. Python's onnx is pinned and installed into a virtual
# environment made here (VENV, default .cache/venv-check).
# Usage: scripts/onnx-check.sh [WORKDIR]   (needs bin/dartc: make build)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.cache/venv-check}
work=${1:-$(mktemp -d)}
dartc=${DARTC:-bin/dartc}
onnx_pin="onnx==1.23.2 numpy==2.3.5 protobuf==6.33.1 ml_dtypes==0.7.0 typing_extensions==4.16.0"

if ! "$venv/bin/python" -c 'import onnx, sys; sys.exit(onnx.__version__ != "1.23.2")' 2>/dev/null; then
  echo "onnx-check: installing $onnx_pin into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $onnx_pin
fi

mkdir -p "$work"
dirs=()
compile() { # NAME MODEL [compile flags...]
  local name=$1 model=$2
  shift 2
  "$dartc" compile "$model" -o "$work/$name" --copy-weights --force "$@" >/dev/null
  dirs+=("$work/$name=$model")
}

# The exporter fixtures: PyTorch's TorchScript and dynamo exports of a tiny Qwen2.5.
compile export-torchscript models/export/testdata/tiny-qwen2.5/torchscript/model.onnx
compile export-dynamo models/export/testdata/tiny-qwen2.5/dynamo/model.onnx
# Mixed precision (--precision fp16|bf16) for the CUDA and the CPU kernel tables.
for prec in fp16 bf16; do
  for provider in cuda cpu; do
    compile "export-torchscript-$prec-$provider" models/export/testdata/tiny-qwen2.5/torchscript/model.onnx --precision "$prec" --provider "$provider"
  done
  compile "export-dynamo-$prec" models/export/testdata/tiny-qwen2.5/dynamo/model.onnx --precision "$prec"
done
# ONNX Runtime GenAI's exports (a float16 Llama, a scatter-bias decoder): fused inference ops, so decode only.
compile ortgenai-llama-fp16 testdata/onnx/ortgenai-tiny-random-llama-fp16/model.onnx --graphs decode
compile ortgenai-scatter testdata/onnx/ortgenai-static-scatter-bias-decoder/model.onnx --graphs decode
# The synthesized Qwen2 in each linear form, float32 and float64, with and without a KV cache.
for form in torchscript dynamo gemm; do
  for dtype in float32 float64; do
    for kv in "" --kv-cache; do
      name="synth-$form-$dtype${kv:+-kv}"
      "$dartc" models synth --preset tiny --layers 2 --linear-form "$form" --dtype "$dtype" $kv \
        -o "$work/src-$name" --force >/dev/null
      compile "$name" "$work/src-$name/model.onnx" --rank 4
    done
  done
done

"$venv/bin/python" scripts/onnx_check.py "${dirs[@]}"
