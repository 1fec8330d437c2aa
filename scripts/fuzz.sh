#!/usr/bin/env bash
# make fuzz: runs every fuzz target for FUZZTIME (default 30s) each.
set -euo pipefail
t=${FUZZTIME:-30s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $f"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime 3s "$pkg"
  done
done
