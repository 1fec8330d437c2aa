#!/usr/bin/env bash
# The paper's comparison in miniature on the mini model (docs/mini-experiment.md):
# base, single LoRA (Search-R1-style joint training), DART (dual) and two-agent, at
# equal budgets (the same GRPO settings and steps) and several seeds; EM on the
# single- and two-hop test questions; the gradient-angle histogram; LEAS λ23.
#
#   scripts/mini-experiment.sh [OUT]      (default out/mini-experiment)
#   SEEDS="1 2 3"  VARIANTS="single dual two-agent"  STEPS=N (default: the config's)
#   PARTS="train angles leas"              which parts to run (all by default)
# Finished runs and evaluations are kept: rerunning with the same settings (binary,
# config, STEPS) skips them; other settings are refused in the same OUT.
set -euo pipefail
out=${1:-out/mini-experiment}
dartc=${DARTC:-bin/dartc}
config=${CONFIG:-models/mini/grpo-demo.yaml}
seeds=${SEEDS:-1 2 3}
variants=${VARIANTS:-single dual two-agent}
parts=${PARTS:-train angles leas}
data=data/mini
test_sets=$data/test_1hop.jsonl,$data/test_2hop.jsonl
turns="--max-turns 2 --max-turn-tokens 48"
steps=${STEPS:+--steps $STEPS}
step() { printf '\n== %s\n' "$*"; }
timed() { # timed FILE cmd…: wall time and peak memory of cmd into FILE
  local f=$1; shift
  /usr/bin/time -f 'wall_s %e
max_rss_kb %M' -o "$f.tmp" "$@" && mv "$f.tmp" "$f"
}
[ -x /usr/bin/time ] || { echo "mini-experiment: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
[ -n "${DARTC:-}" ] || go build -o "$dartc" ./cmd/dartc
mkdir -p "$out"
# Kept results are reused only under the same settings: the binary, the
# config, STEPS and the turns. Other settings need another OUT.
stamp="$(sha256sum "$dartc" "$config" | cut -c1-16 | tr '\n' ' ')steps=${STEPS:-config} $turns"
if [ -f "$out/settings.stamp" ] && [ "$(cat "$out/settings.stamp")" != "$stamp" ]; then
  echo "mini-experiment: $out holds results made with other settings ($(cat "$out/settings.stamp"); now $stamp): choose another OUT, or remove it to start again" >&2
  exit 1
fi
echo "$stamp" >"$out/settings.stamp"

if [ ! -f "$out/compiled/manifest.json" ]; then
  step "compile the mini model"
  $dartc compile models/mini/model/model.onnx -o "$out/compiled" --rank 8 --alpha 16 --force
fi
[ -f "$out/mini.bm25" ] || $dartc search index --corpus $data/corpus.jsonl --format title-text -o "$out/mini.bm25"

evaluate() { # evaluate NAME [--adapters FILE]
  local name=$1; shift
  if [ ! -f "$out/eval/$name/table.json" ]; then
    timed "$out/eval/$name.time" $dartc eval --model "$out/compiled" "$@" --data $test_sets \
      --search "$out/mini.bm25" $turns -o "$out/eval/$name" --quiet
  fi
}
train() { # train NAME flags…
  local name=$1; shift
  if [ ! -f "$out/runs/$name.time" ]; then
    rm -rf "$out/runs/$name"
    timed "$out/runs/$name.time" $dartc train --model "$out/compiled" --data $data/train.jsonl \
      --search "$out/mini.bm25" --config "$config" $steps "$@" -o "$out/runs/$name" --no-progress
  fi
}
last_adapters() { echo "$(ls -d "$out/runs/$1"/checkpoints/step-* | tail -1)/adapters.safetensors"; }
mkdir -p "$out/eval" "$out/runs"

if [[ " $parts " == *" train "* ]]; then
  step "base model"
  evaluate base
  for s in $seeds; do
    for v in $variants; do
      step "$v, seed $s"
      train "$v-s$s" --variant "$v" --seed "$s"
      evaluate "$v-s$s" --adapters "$(last_adapters "$v-s$s")"
    done
  done
fi

if [[ " $parts " == *" angles "* ]]; then
  step "gradient angles between reasoning and tool gradients of one shared adapter (base model)"
  [ -f "$out/angles/summary.json" ] || timed "$out/angles.time" $dartc gradangle --model "$out/compiled" \
    --adapters "$out/compiled/adapters.safetensors" --data $data/val.jsonl --limit 64 --search "$out/mini.bm25" \
    $turns -o "$out/angles" --quiet
fi

if [[ " $parts " == *" leas "* ]]; then
  step "LEAS: single adapters trained on reasoning tokens, tool tokens, all tokens (seed 1)"
  for g in reason tool all; do
    train "leas-$g" --variant single --grad-tokens "$g" --seed 1
  done
  [ -f "$out/leas/summary.json" ] || timed "$out/leas.time" $dartc leas --model "$out/compiled" \
    --reason-adapters "$(last_adapters leas-reason)" --tool-adapters "$(last_adapters leas-tool)" \
    --unified-adapters "$(last_adapters leas-all)" --data $test_sets --limit 100 -k 8 \
    --search "$out/mini.bm25" $turns -o "$out/leas" --quiet
fi

step "results"
go run ./models/mini/experiment "$out" | tee "$out/results.md"
