#!/usr/bin/env bash
# Fetches the CPU build of ONNX Runtime from the npm package onnxruntime-node
# (it ships bin/napi-v6/linux/x64/libonnxruntime.so.1) into .cache/ort/VERSION/.
# Usage: scripts/fetch-ort.sh VERSION DEST_DIR
set -euo pipefail
version=${1:?version}
dest=${2:?destination directory}
lib="$dest/libonnxruntime.so.1"
[ -s "$lib" ] && exit 0
command -v npm >/dev/null || { echo "fetch-ort: npm is needed to fetch onnxruntime-node@$version (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-ort: downloading onnxruntime-node@$version from the npm registry" >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tar -xzf "$tmp/onnxruntime-node-$version.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
mkdir -p "$dest"
# Rename into place so that an interrupted fetch never leaves a partial library.
mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "fetch-ort: $lib" >&2
