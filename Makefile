# dartc — `make` builds, `make test` tests, `make demo` runs the pipeline on
# built-in defaults. Every target installs what it needs on a fresh machine.

ORT_VERSION := 1.30.0
ORT_DIR     := .cache/ort/$(ORT_VERSION)
ORT_LIB     := $(ORT_DIR)/libonnxruntime.so.1
ORT_GPU_DIR := .cache/ort-gpu/$(ORT_VERSION)
ORT_GPU_LIB := $(ORT_GPU_DIR)/libonnxruntime_providers_cuda.so
export ONNXRUNTIME_SHARED_LIBRARY_PATH ?= $(abspath $(ORT_LIB))
export CGO_ENABLED := 1

GO      ?= go
DARTC   := bin/dartc
DEMO    := demo-out

.PHONY: all build ort ort-gpu test demo bench bench-compare fuzz golden proto proto-check fixtures mini-model clean

all: build

build: $(DARTC)

# Go sources, the cgo layer's C and the embedded kernel tables.
$(DARTC): $(shell find . \( -name '*.go' -o -name '*.c' -o -name '*.h' -o -path './passes/kernels/*.txt' \) -not -path './.cache/*') go.mod go.sum
	$(GO) build -o $@ ./cmd/dartc

ort: $(ORT_LIB)

$(ORT_LIB): scripts/fetch-ort.sh
	scripts/fetch-ort.sh $(ORT_VERSION) $(ORT_DIR)

# The CUDA 13 build of ONNX Runtime (PyPI onnxruntime-gpu): --device cuda
# loads it from .cache/ort-gpu; `dartc version` says what else it needs.
ort-gpu: $(ORT_GPU_LIB)

$(ORT_GPU_LIB): scripts/fetch-ort.sh
	scripts/fetch-ort.sh --gpu $(ORT_VERSION) $(ORT_GPU_DIR)

test: ort ort-gpu
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...

demo: build ort
	scripts/demo.sh $(DEMO)

bench: ort
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# dartc vs PyTorch eager + PEFT on a ~100M Qwen2-shaped model, same weights and
# batch, interleaved (scripts/bench-compare.sh; docs/bench.md): train step,
# forward log-probs, peak RSS, and the 152k-vocabulary train step's peak.
# Makes its own pinned venv (.cache/venv-bench; needs Python 3.11 and PyPI
# once). Not part of make test. MODELS, SEQS, PHASES, REPS, LORA, ... select
# what runs (see the script).
bench-compare: ort
	scripts/bench-compare.sh

fuzz: ort
	scripts/fuzz.sh

proto:
	scripts/proto.sh

proto-check:
	scripts/proto.sh check

# Rewrites the golden dumps of compiled graphs (review the diff like code).
golden: ort
	$(GO) test ./compiler -run Golden -update

# Regenerates the exporter fixtures and their PyTorch references
# (models/export/testdata); needs Python 3.11 and PyPI (torch, transformers,
# onnx, onnxscript, onnxruntime: models/export/requirements.txt). Not part
# of make test, which reads the committed files.
fixtures:
	models/export/regen.sh

# Regenerates the mini model (models/mini/model: tokenizer, weights, ONNX
# export, training log, PyTorch references) from the mini world, in a pinned
# venv (models/mini/.venv from models/export/requirements.txt; VENV=DIR to
# reuse one). CPU only, about 20 minutes on two cores. Not part of make test.
mini-model:
	models/mini/regen.sh

# The demo's folder only when scripts/demo.sh made it (its marker file).
clean:
	rm -rf bin
	if [ -f $(DEMO)/.dartc-demo ]; then rm -rf $(DEMO); fi
