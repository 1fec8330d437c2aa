#!/usr/bin/env bash
# make proto: regenerates ir/onnxpb from onnx.proto with pinned tools
# (protoc from Debian's protobuf-compiler, protoc-gen-go v1.36.12).
# make proto-check: regenerates and fails if the committed bindings differ.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "proto: protoc is needed: install it (sudo apt-get install protobuf-compiler) and rerun" >&2
    exit 1
  fi
  echo "proto: installing protoc (apt-get install protobuf-compiler)" >&2
  apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null
fi
gobin=$(go env GOPATH)/bin
[ -x "$gobin/protoc-gen-go" ] && "$gobin/protoc-gen-go" --version 2>/dev/null | grep -q 'v1.36.12' ||
  go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
if [ "${1:-}" != check ]; then
  (cd ir/onnxpb && PATH="$gobin:$PATH" protoc --go_out=. --go_opt=paths=source_relative onnx.proto)
  exit 0
fi
# check: generate beside the committed file and compare, leaving it as it
# is. The header line naming protoc's version is not compared: protoc writes
# its own, and the bindings do not depend on it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd ir/onnxpb && PATH="$gobin:$PATH" protoc --go_out="$tmp" --go_opt=paths=source_relative onnx.proto)
strip() { grep -v '^// 	protoc  *v' "$1"; }
if ! diff -u <(strip ir/onnxpb/onnx.pb.go) <(strip "$tmp/onnx.pb.go"); then
  echo "proto-check: ir/onnxpb/onnx.pb.go is stale; run make proto and commit" >&2
  exit 1
fi
echo "proto-check: generated bindings are up to date ($(protoc --version))"
