#!/usr/bin/env bash
# Builds out/gpu/ort-gpu-bundle.tar.xz (about 30 MB): the dartc binary and ONNX Runtime 1.30.0's CUDA 13
# libraries from .cache/ort-gpu (`make ort-gpu`), the CUDA provider's device code pruned to sm_90 (H100/H200)
# by scripts/gpu/prune_fatbin.py, so that it can travel to a GPU host without network together with the
# working tree. scripts/gpu-check.sh unpacks it there. Never use the pruned library on another GPU family.
#
# usage: scripts/gpu-bundle.sh [DEST_DIR]      (MODE=sm90|lean|lean2, default lean2; lean2 needs zstd)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-out/gpu}
ver=1.30.0
src=.cache/ort-gpu/$ver
for f in libonnxruntime.so.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
	[ -s "$src/$f" ] || { echo "gpu-bundle: $src/$f is missing: run \`make ort-gpu\` first" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "gpu-bundle: python3 is needed to prune the CUDA provider" >&2; exit 1; }
command -v xz >/dev/null || { echo "gpu-bundle: xz is needed (apt-get install xz-utils)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/b/lib"
cp "$src/libonnxruntime.so.1" "$src/libonnxruntime_providers_shared.so" "$tmp/b/lib/"
python3 scripts/gpu/prune_fatbin.py "$src/libonnxruntime_providers_cuda.so" "$tmp/b/lib/libonnxruntime_providers_cuda.so" --mode "${MODE:-lean2}"
CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o "$tmp/b/dartc" ./cmd/dartc
mkdir -p "$dest"
# The source the binary was built from: gpu-check.sh refuses a bundle of
# another commit, or of uncommitted changes.
{ git rev-parse HEAD; git diff --quiet HEAD -- . ':!out' || echo dirty; } >"$tmp/b/commit"
tar -C "$tmp/b" -cf - dartc lib commit | xz -9 -T0 >"$dest/ort-gpu-bundle.tar.xz.tmp"
mv "$dest/ort-gpu-bundle.tar.xz.tmp" "$dest/ort-gpu-bundle.tar.xz"
ls -l "$dest/ort-gpu-bundle.tar.xz"
