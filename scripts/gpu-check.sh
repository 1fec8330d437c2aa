#!/usr/bin/env bash
# scripts/gpu-check.sh — dartc on a CUDA host, in at most 8 minutes, without network.
#
#   1. `dartc version --device cuda`: the library, its providers, whether CUDA runs
#   2. CPU-vs-CUDA parity (`dartc parity`) of logprobs.onnx, train.onnx (loss, every adapter gradient)
#      and greedy decoding, on the tiny shape and the qwen2.5-0.5b shape; float64 gradcheck on CUDA
#   3. GRPO steps: tiny CPU vs CUDA (same seed), then the qwen2.5-0.5b shape on CUDA: per-phase times,
#      tokens/s, peak device memory, MFU of the train calls against the H200's bf16 peak
#   4. the same train step in PyTorch + PEFT bf16 (scripts/gpu/torch_lora_step.py: benchcmp/torch/lorastep.py's
#      step, the one make bench-compare times), for the ratio
#
# usage: scripts/gpu-check.sh [--cpu-dry-run] [--out DIR]
#
# Runs from the repository and reads nothing outside it (and the host's CUDA libraries). dartc and the
# CUDA build of ONNX Runtime come from out/gpu/ort-gpu-bundle.tar.xz (scripts/gpu-bundle.sh, made on a
# machine with network) when present, else from bin/dartc (`go build`) and .cache/ort-gpu (`make ort-gpu`).
# The CUDA 13 libraries and cuDNN 9 are looked for in LD_LIBRARY_PATH, the Python site-packages
# (nvidia/*/lib, as torch's CUDA 13 wheels install them) and /usr/local/cuda.
#
# --cpu-dry-run runs every step with the CPU in place of CUDA (the CPU library, `--device cpu`,
# peak resident memory in place of device memory, smaller stand-ins for the qwen2.5-0.5b shape
# unless DRY_FULL=1): it checks the script, not the GPU.
#
# Results: DIR/gpu-check.txt (the log), DIR/summary.md (the figures), DIR/*.jsonl (metrics). DIR defaults
# to out/gpu-check. Environment: PEAK_TFLOPS (790, the H200's dense bf16 peak as used for MFU), Q05_STEPS (3),
# BUDGET_S (seconds for the whole check: 470 on a GPU, 1800 for the dry run), PYTHON (python3: the Python
# with torch, transformers and peft for step 4, e.g. .cache/venv-bench/bin/python from make bench-compare).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dry=0
out=out/gpu-check
while [ $# -gt 0 ]; do
	case $1 in
	--cpu-dry-run) dry=1 ;;
	--out) out=$2; shift ;;
	*) echo "gpu-check: unknown argument $1 (usage: scripts/gpu-check.sh [--cpu-dry-run] [--out DIR])" >&2; exit 2 ;;
	esac
	shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/gpu-check.txt
sum=$out/summary.md
work=$root/.cache/gpu-check/work
rm -rf "$work"
mkdir -p "$work"
: >"$log"
peak=${PEAK_TFLOPS:-790}
q05_steps=${Q05_STEPS:-3}
start=$SECONDS
failures=()

say() { printf '\n== %s  [%ss]\n' "$*" "$((SECONDS - start))" | tee -a "$log"; }
fail() { failures+=("$1"); echo "FAILED: $1" | tee -a "$log"; }
# left: the seconds left of the budget (8 minutes on a GPU; a shared CPU needs more for the dry run),
# at least 10
budget=${BUDGET_S:-470}
[ "$dry" = 1 ] && budget=${BUDGET_S:-1800}
left() { local l=$((budget - (SECONDS - start))); [ $l -lt 10 ] && l=10; echo $l; }

# --- dartc and the library ---------------------------------------------------------------------
dev=cuda
if [ "$dry" = 1 ]; then
	dev=cpu
	lib=$root/.cache/ort/1.30.0/libonnxruntime.so.1
	[ -s "$lib" ] || { echo "gpu-check: $lib is missing: run \`make ort\`" >&2; exit 1; }
	dartc=$root/bin/dartc
	go build -o "$dartc" ./cmd/dartc || exit 1
elif [ -s out/gpu/ort-gpu-bundle.tar.xz ]; then
	b=$root/.cache/gpu-check/bundle
	rm -rf "$b" && mkdir -p "$b"
	xz -dc out/gpu/ort-gpu-bundle.tar.xz | tar -C "$b" -xf - || exit 1
	dartc=$b/dartc lib=$b/lib/libonnxruntime.so.1
	# The bundle's dartc must be this checkout's (gpu-bundle.sh records its commit).
	here=$(git rev-parse HEAD 2>/dev/null || echo unknown)
	built=$(head -1 "$b/commit" 2>/dev/null || echo unknown)
	if [ "$built" != "$here" ] || grep -q dirty "$b/commit" 2>/dev/null; then
		if [ -z "${GPU_CHECK_ANY_BUNDLE:-}" ]; then
			echo "gpu-check: out/gpu/ort-gpu-bundle.tar.xz holds dartc built from $built$(grep -q dirty "$b/commit" 2>/dev/null && echo ' with uncommitted changes'), this checkout is $here: rebuild it (scripts/gpu-bundle.sh) or set GPU_CHECK_ANY_BUNDLE=1" >&2
			exit 1
		fi
		echo "gpu-check: using a bundle built from $built (checkout $here; GPU_CHECK_ANY_BUNDLE)" >&2
	fi
else
	lib=$root/.cache/ort-gpu/1.30.0/libonnxruntime.so.1
	[ -s "$lib" ] || { echo "gpu-check: no out/gpu/ort-gpu-bundle.tar.xz and no $lib: run \`make ort-gpu\` (or scripts/gpu-bundle.sh on a machine with network)" >&2; exit 1; }
	dartc=$root/bin/dartc
	go build -o "$dartc" ./cmd/dartc || exit 1 # never an older binary
fi
export ONNXRUNTIME_SHARED_LIBRARY_PATH=$lib
if [ "$dev" = cuda ]; then
	dirs=""
	sp=$(python3 -c 'import site, sys; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true)
	for l in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9; do
		f=$(find $sp /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib -name "$l" 2>/dev/null | head -1)
		[ -n "$f" ] && case ":$dirs:" in *":$(dirname "$f"):"*) ;; *) dirs=$dirs:$(dirname "$f") ;; esac
	done
	export LD_LIBRARY_PATH=${dirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export CUDA_MODULE_LOADING=LAZY
fi

# peak_run FILE CMD...: runs CMD, writing the peak memory in GiB to FILE (device memory used, from
# nvidia-smi, on CUDA; the process's peak resident memory on the CPU).
peak_run() {
	local f=$1; shift
	"$@" &
	local pid=$! p=0 m
	while kill -0 $pid 2>/dev/null; do
		if [ "$dev" = cuda ]; then
			m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1)
			m=$((${m:-0} * 1024))
		else
			m=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null)
			for c in $(pgrep -P $pid 2>/dev/null); do
				c=$(awk '/VmHWM/ {print $2}' /proc/$c/status 2>/dev/null); [ "${c:-0}" -gt "${m:-0}" ] && m=$c
			done
		fi
		[ "${m:-0}" -gt $p ] && p=$m
		sleep 0.2
	done
	wait $pid
	local rc=$?
	awk -v k=$p 'BEGIN {printf "%.2f\n", k / 1048576}' >"$f"
	return $rc
}

say "setup (device $dev$([ "$dry" = 1 ] && echo ', CPU dry run'))"
{
	[ "$dev" = cuda ] && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
	echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
	"$dartc" version --device $dev
} 2>&1 | tee -a "$log"
if [ "$dev" = cuda ] && ! "$dartc" version --device cuda 2>/dev/null | grep -q '^cuda: usable'; then
	fail "the CUDA provider is not usable (see dartc version above)"
fi

# --- models ---------------------------------------------------------------------------------------
say "models"
q05=(--preset qwen2.5-0.5b --weights random)
# The GRPO run and the PyTorch step compute in the same precision: bf16 on
# CUDA (the parity checks keep the fp32 compile), fp32 on the CPU dry run.
q05prec=bf16
[ "$dry" = 1 ] && q05prec=fp32
q05mb=8
q05run=(--prompts 8 --group 5 --max-turns 1 --max-turn-tokens 128 --micro-batch $q05mb)
if [ "$dry" = 1 ] && [ -z "${DRY_FULL:-}" ]; then
	q05=(--preset qwen2.5-0.5b --layers 1 --weights random)
	q05mb=2
	q05run=(--prompts 2 --group 2 --max-turns 1 --max-turn-tokens 16 --micro-batch $q05mb --low-memory)
fi
{
	"$dartc" models synth --preset tiny --vocab 151936 --kv-cache -o "$work/tiny" &&
		"$dartc" compile "$work/tiny/model.onnx" -o "$work/tiny-c" &&
		"$dartc" models synth --preset tiny --layers 1 --dtype float64 -o "$work/f64" &&
		"$dartc" compile "$work/f64/model.onnx" -o "$work/f64-c" --rank 4 &&
		"$dartc" models synth "${q05[@]}" --kv-cache -o "$work/q05" &&
		"$dartc" compile "$work/q05/model.onnx" -o "$work/q05-c" &&
		"$dartc" compile "$work/q05/model.onnx" -o "$work/q05-train" --precision $q05prec &&
		"$dartc" search index --corpus data/demo/corpus.jsonl --format title-text -o "$work/bm25"
} >>"$log" 2>&1 || { fail "building the models"; tail -5 "$log"; exit 1; }
echo "qwen2.5-0.5b model: ${q05[*]}; its GRPO run: ${q05run[*]}" | tee -a "$log"

# --- parity -----------------------------------------------------------------------------------------
say "1 parity cpu vs $dev: logprobs, train (loss, gradients), greedy decode"
for m in tiny-c q05-c; do
	echo "-- $m" | tee -a "$log"
	timeout $(left) "$dartc" parity "$work/$m" --device $dev --batch 2 --seq 32 --decode-steps 16 2>&1 | tee "$work/parity-$m.txt" | tee -a "$log"
	[ "${PIPESTATUS[0]}" = 0 ] || fail "parity $m"
done
echo "-- float64 gradcheck on $dev" | tee -a "$log"
timeout $(left) "$dartc" gradcheck "$work/f64-c" --samples 1 --top 3 --device $dev 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "gradcheck float64 on $dev"

# --- GRPO -------------------------------------------------------------------------------------------
train() { # NAME DEVICE MODEL STEPS extra...
	local name=$1 d=$2 model=$3 steps=$4; shift 4
	peak_run "$work/$name.peak" timeout $(left) "$dartc" train --device $d --model "$model" --data data/demo/hotpotqa_val.jsonl \
		--search "$work/bm25" -o "$work/$name" --steps $steps --seed 1 --no-progress --checkpoint-every 0 "$@" >>"$log" 2>&1
	local rc=$?
	cp "$work/$name/metrics.jsonl" "$out/$name.jsonl" 2>/dev/null
	return $rc
}
say "2 tiny GRPO, 2 steps, cpu vs $dev (same seed)"
train tiny-ref cpu "$work/tiny-c" 2 --prompts 2 --group 2 --max-turns 1 --max-turn-tokens 16 --lr 1e-3 || fail "tiny GRPO on cpu"
train tiny-dev $dev "$work/tiny-c" 2 --prompts 2 --group 2 --max-turns 1 --max-turn-tokens 16 --lr 1e-3 || fail "tiny GRPO on $dev"
say "3 GRPO at the qwen2.5-0.5b shape on $dev ($q05_steps steps: ${q05run[*]})"
train q05-$dev $dev "$work/q05-train" $q05_steps "${q05run[@]}" ||
	fail "qwen2.5-0.5b GRPO on $dev"

# --- PyTorch ----------------------------------------------------------------------------------------
say "4 PyTorch + PEFT, the same train step (bf16 on cuda; fp32 on the cpu dry run; GRPO loss with entropy_coeff 0.001 as dartc train's default; no optimizer, as train.onnx's calls)"
shape=$(python3 - "$out/q05-$dev.jsonl" "$q05mb" <<'PY' 2>/dev/null
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pos = sum(r.get("train_positions", 0) for r in rows); calls = sum(r.get("train_calls", 0) for r in rows)
mb = int(sys.argv[2])
print(mb, max(1, round(pos / calls / mb)) if calls else 0)
PY
)
tb=${shape% *} ts=${shape#* }
if [ -n "$shape" ] && [ "${ts:-0}" -gt 0 ]; then
	tdev=cuda tdt=bf16
	[ "$dev" = cpu ] && tdev=cpu tdt=fp32
	timeout $(left) "${PYTHON:-python3}" scripts/gpu/torch_lora_step.py "$work/q05/config.json" --batch $tb --seq $ts --device $tdev --dtype $tdt --entropy-coeff 0.001 --no-optimizer \
		--steps $([ "$dry" = 1 ] && echo 2 || echo 10) --warmup $([ "$dry" = 1 ] && echo 1 || echo 3) 2>>"$log" | tee "$out/torch.json" | tee -a "$log"
else
	echo "no train calls recorded by step 3: nothing to compare" | tee -a "$log"
fi

# --- summary ----------------------------------------------------------------------------------------
say "summary"
python3 - "$out" "$work" "$dev" "$peak" "$dry" >"$sum" <<'PY'
import json, os, sys
out, work, dev, peak, dry = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] == "1"
def rows(name):
    p = os.path.join(out, name + ".jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
def read(p):
    return open(p).read().strip() if os.path.exists(p) else "n/a"
cfg = json.load(open(os.path.join(work, "q05", "config.json")))
H, V, L, I = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
hd = H // cfg["num_attention_heads"]
N = L * (2 * H * cfg["num_attention_heads"] * hd + 2 * H * cfg["num_key_value_heads"] * hd + 3 * H * I) + V * H
print(f"# gpu-check ({'CPU dry run: the CUDA provider was not used' if dry else 'device ' + dev})\n")
print("## Parity, CPU vs " + dev + "\n\n```")
for m in ("tiny-c", "q05-c"):
    print(f"{m}:\n" + read(os.path.join(work, f"parity-{m}.txt")))
print("```\n\n## GRPO steps\n")
print("tiny-ref runs on the CPU, tiny-dev on " + dev + ", same seed.\n")
print("| run | step | rollout s | reference s | train s | optimizer s | step s | rollout tok/s | train tok/s | train positions | loss |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name in ("tiny-ref", "tiny-dev", "q05-" + dev):
    for r in rows(name):
        print(f"| {name} | {r['step']} | {r['rollout_s']:.2f} | {r['reference_s']:.2f} | {r['train_s']:.2f} | {r['optimizer_s']:.3f} | "
              f"{r['step_s']:.2f} | {r['tokens_per_s']:.0f} | {r['train_tokens_per_s']:.0f} | {r.get('train_positions', 0)} | {r['loss']:.5f} |")
q = rows("q05-" + dev)[1:] or rows("q05-" + dev)  # the first step warms up
pos, ts = sum(r.get("train_positions", 0) for r in q), sum(r["train_s"] for r in q)
mem = read(os.path.join(work, f"q05-{dev}.peak"))
print(f"\nqwen2.5-0.5b shape ({L} layers, vocab {V}; matmul parameters N = {N/1e6:.0f}M): ", end="")
if ts > 0:
    tflops = 4 * N * pos / ts / 1e12
    print(f"train calls {pos/ts:.0f} positions/s, {tflops:.2f} TFLOP/s counted as 4·N per position, "
          f"MFU {100*tflops/peak:.2f}% of {peak:.0f} TFLOP/s; peak {'device' if dev == 'cuda' else 'resident'} memory {mem} GiB")
else:
    print("no train time recorded")
t = os.path.join(out, "torch.json")
if os.path.exists(t) and os.path.getsize(t) > 0:
    tj = json.loads(open(t).read().strip().splitlines()[-1])
    if "skipped" in tj:
        print(f"\nPyTorch: skipped ({tj['skipped']})")
    elif ts > 0:
        print(f"\nPyTorch {tj['torch']} {tj['lora']} {tj['dtype']} on {tj['device']}, batch {tj['batch']} × {tj['seq']}: "
              f"{tj['tokens_per_s']:.0f} tokens/s ({tj['tflops_4n']:.2f} TFLOP/s 4·N); dartc's train calls {pos/ts:.0f} positions/s: "
              f"PyTorch/dartc = {tj['tokens_per_s']/(pos/ts):.2f} (the two measured one after the other, not interleaved; "
              f"dartc's GRPO run includes its rollouts' varying lengths, PyTorch's step one fixed batch)")
PY
cat "$sum" | tee -a "$log"
say "done in $((SECONDS - start)) s"
if [ ${#failures[@]} -gt 0 ]; then
	printf 'gpu-check: %d failure(s):\n' ${#failures[@]} | tee -a "$log"
	printf '  %s\n' "${failures[@]}" | tee -a "$log"
	exit 1
fi
