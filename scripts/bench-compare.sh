#!/usr/bin/env bash
# scripts/bench-compare.sh — `make bench-compare`: dartc vs PyTorch eager + PEFT on the same weights and
# batch, side by side in one run (cmd/benchcmp, package benchcmp).
#
#   1. a pinned venv (.cache/venv-bench, from benchcmp/torch/requirements.txt: the exporter's pins + peft)
#   2. per model: random weights in Hugging Face transformers (benchcmp/torch/make_model.py), the ONNX
#      export (models/export/export_qwen2.py, TorchScript, weights in external data) and `dartc compile`
#      (defaults: rank 16, alpha 32, q k v o gate up down, two roles). The checkpoint and export are kept
#      in .cache/bench-compare/MODEL and remade when their scripts or pins change; the compile is redone
#      whenever bin/dartc changes.
#   3. cmd/benchcmp on each model: a markdown table on stdout, JSON lines in OUT/bench-compare.jsonl.
#
# Models: 100m (12 layers, hidden 768, 12 heads, 2 KV heads, MLP 2048, vocabulary 32768: train and
# log-probs at each of SEQS) and 100m-152k (the same with Qwen2's 151,936-token vocabulary: the train
# step at 512 tokens, for its peak memory).
#
# Environment: MODELS (100m,100m-152k), SEQS (256,512: the 100m lengths), SEQS_152K (512), PHASES
# (train,logprobs: the 100m phases), BATCH (4), WARMUP (2), REPS (3), LORA (peft | plain | dual),
# THREADS (the cores), SETTLE (0s: a pause before every step, e.g. 1s), OUT (out/bench-compare), VENV (.cache/venv-bench), PYTHON (python3.11, to make
# the venv), BUILD_ONLY (1: make the venv and the models, measure nothing), COMPILE_FLAGS (more
# `dartc compile` flags, e.g. --share-embedding or --attention-blocks 1).
set -euo pipefail
cd "$(dirname "$0")/.."
models=${MODELS:-100m,100m-152k}
seqs=${SEQS:-256,512}
seqs152=${SEQS_152K:-512}
phases=${PHASES:-train,logprobs}
venv=${VENV:-.cache/venv-bench}
out=${OUT:-out/bench-compare}
work=.cache/bench-compare
req=benchcmp/torch/requirements.txt
mkdir -p "$out" "$work"

sha() { cat "$@" | sha256sum | cut -c1-16; }

# --- the venv -------------------------------------------------------------------------------------
want=$(sha "$req" models/export/requirements.txt)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.bench-requirements" 2>/dev/null)" != "$want" ]; then
	echo "bench-compare: making the venv $venv ($req)" >&2
	[ -x "$venv/bin/python" ] || "${PYTHON:-python3.11}" -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
	echo "$want" >"$venv/.bench-requirements"
fi
py=$venv/bin/python

# --- the binaries -----------------------------------------------------------------------------------
go build -o bin/dartc ./cmd/dartc
go build -o bin/benchcmp ./cmd/benchcmp

# --- the models -------------------------------------------------------------------------------------
# model NAME VOCAB: the checkpoint, its export and its compile in $work/NAME
model() {
	local name=$1 vocab=$2 dir=$work/$1
	local stamp
	stamp="vocab=$vocab $(sha benchcmp/torch/make_model.py models/export/export_qwen2.py "$req" models/export/requirements.txt)"
	if [ "$(cat "$dir/export.stamp" 2>/dev/null)" != "$stamp" ]; then
		echo "bench-compare: $name: random weights and the ONNX export" >&2
		rm -rf "$dir" && mkdir -p "$dir"
		"$py" benchcmp/torch/make_model.py -o "$dir/hf" --vocab "$vocab" >&2
		"$py" models/export/export_qwen2.py --checkpoint "$dir/hf" -o "$dir/onnx" --exporter torchscript \
			--external-data always >"$dir/export.json"
		echo "$stamp" >"$dir/export.stamp"
	fi
	local dstamp
	dstamp="$(sha bin/dartc) ${COMPILE_FLAGS:-}"
	if [ "$(cat "$dir/compile.stamp" 2>/dev/null)" != "$dstamp" ]; then
		echo "bench-compare: $name: dartc compile ${COMPILE_FLAGS:-}" >&2
		local t0=$SECONDS
		# shellcheck disable=SC2086 # COMPILE_FLAGS holds several flags
		bin/dartc compile "$dir/onnx/model.onnx" -o "$dir/compiled" --force ${COMPILE_FLAGS:-} >"$dir/compile.log" 2>&1 ||
			{ cat "$dir/compile.log" >&2; exit 1; }
		echo "bench-compare: $name: compiled in $((SECONDS - t0)) s" >&2
		echo "$dstamp" >"$dir/compile.stamp"
	fi
}

if [ -n "${BUILD_ONLY:-}" ]; then # make the models only (runs stay short on a shared machine)
	for m in ${models//,/ }; do
		case $m in
		100m) model 100m 32768 ;;
		100m-152k) model 100m-152k 151936 ;;
		*) echo "bench-compare: unknown model $m (100m, 100m-152k)" >&2; exit 2 ;;
		esac
	done
	exit 0
fi

jsonl=$out/bench-compare.jsonl
md=$out/bench-compare.md
: >"$jsonl"
: >"$md"
common=(-python "$py" -batch "${BATCH:-4}" -warmup "${WARMUP:-2}" -reps "${REPS:-3}" -lora "${LORA:-peft}" -settle "${SETTLE:-0s}" -jsonl "$jsonl")
[ -n "${THREADS:-}" ] && common+=(-threads "$THREADS")
echo "dartc $(git rev-parse --short HEAD 2>/dev/null || echo '(no git)')$(git diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')${COMPILE_FLAGS:+, compiled with $COMPILE_FLAGS}; load: $(uptime)" | tee -a "$md"
for m in ${models//,/ }; do
	case $m in
	100m) model 100m 32768; args=(-seqs "$seqs" -phases "$phases") ;;
	100m-152k) model 100m-152k 151936; args=(-seqs "$seqs152" -phases train) ;;
	*) echo "bench-compare: unknown model $m (100m, 100m-152k)" >&2; exit 2 ;;
	esac
	bin/benchcmp -model "$work/$m/compiled" -checkpoint "$work/$m/hf" -label "$m" "${common[@]}" "${args[@]}" | tee -a "$md"
	echo | tee -a "$md"
done
echo "load: $(uptime)" | tee -a "$md"
echo "bench-compare: $md, $jsonl" >&2
