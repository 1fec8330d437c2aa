#!/usr/bin/env bash
# make proto: regenerates ir/onnxpb from onnx.proto with pinned tools
# (protoc from Debian's protobuf-compiler, protoc-gen-go v1.36.12).
# make proto-check: regenerates and fails if the committed bindings differ.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
  echo "proto: installing protoc (apt-get install protobuf-compiler)" >&2
  apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null
fi
gobin=$(go env GOPATH)/bin
[ -x "$gobin/protoc-gen-go" ] && "$gobin/protoc-gen-go" --version 2>/dev/null | grep -q 'v1.36.12' ||
  go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
(cd ir/onnxpb && PATH="$gobin:$PATH" protoc --go_out=. --go_opt=paths=source_relative onnx.proto)
if [ "${1:-}" = check ]; then
  if ! git diff --exit-code -- ir/onnxpb/onnx.pb.go; then
    echo "proto-check: ir/onnxpb/onnx.pb.go is stale; run make proto and commit" >&2
    exit 1
  fi
  echo "proto-check: generated bindings are up to date"
fi
