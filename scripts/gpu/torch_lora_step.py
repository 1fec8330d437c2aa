#!/usr/bin/env python3
"""The PyTorch side of scripts/gpu-check.sh: the train step dartc's train.onnx
makes (forward, GRPO loss with the trainer's entropy_coeff, backward, LoRA on
q/k/v/o/gate/up/down), with AdamW on the adapters unless --no-optimizer (the
ratio to train.onnx's calls, which do not include dartc's adamw.onnx), on a
Qwen2 model of the same shape, for the ratio of throughputs. The step is benchcmp/torch/lorastep.py's, the one make
bench-compare times against train.onnx.

Reads the synthesized model's config.json (dartc models synth), builds
transformers' Qwen2ForCausalLM with random weights, wraps it with PEFT's LoRA
when peft is installed (else lorastep's plain LoRA, said in the output), and
times --steps steps after --warmup on a random [batch, seq] batch (every
next-token position weighted). Prints one JSON object: tokens/s, seconds per
step, peak memory (device memory on CUDA, the process's peak RSS on the CPU)
and TFLOP/s counted as 4·N·tokens (forward 2N, backward to the activations
2N; N the parameters of the matmuls, lm_head included).

usage: torch_lora_step.py CONFIG.json --batch B --seq T [--rank 16 --alpha 32]
       [--device cuda|cpu] [--dtype bf16|fp32] [--steps 10] [--warmup 3]
       [--entropy-coeff 0.001] [--no-optimizer]
"""
import argparse, json, os, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("config")
ap.add_argument("--batch", type=int, required=True)
ap.add_argument("--seq", type=int, required=True)
ap.add_argument("--rank", type=int, default=16)
ap.add_argument("--alpha", type=float, default=32)
ap.add_argument("--device", default="cuda")
ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--entropy-coeff", type=float, default=0.001, help="the loss's entropy bonus (dartc train's default)")
ap.add_argument("--no-optimizer", action="store_true", help="time forward, loss and backward only")
a = ap.parse_args()

try:
    import torch
    import transformers  # noqa: F401
except ImportError as e:
    print(json.dumps({"skipped": f"needs torch and transformers: {e}"}))
    sys.exit(0)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchcmp", "torch"))
import lorastep  # noqa: E402

cfg = lorastep.read_json(a.config)
dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
model = lorastep.build_model(config=cfg, dtype=dtype, device=a.device)
try:
    import peft  # noqa: F401
    kind = "peft"
except ImportError:
    kind = "plain"
model, lora = lorastep.add_lora(model, kind, a.rank, a.alpha)
if kind == "plain":
    lora += " (peft not installed)"
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-5)
conf = lorastep.qwen2_config(cfg)
N = lorastep.matmul_params(conf)
batch = lorastep.random_batch(conf.vocab_size, a.batch, a.seq, device=a.device)
batch["entropy_coeff"] = a.entropy_coeff
if a.no_optimizer:
    opt = None
cuda = a.device.startswith("cuda")
sync = torch.cuda.synchronize if cuda else (lambda: None)
if cuda:
    torch.cuda.reset_peak_memory_stats()
for i in range(a.warmup + a.steps):
    if i == a.warmup:
        sync(); t0 = time.time()
    lorastep.train_step(model, batch, optimizer=opt)
sync()
dt = (time.time() - t0) / a.steps
tok = a.batch * a.seq
out = {"lora": lora, "dtype": a.dtype, "device": a.device, "batch": a.batch, "seq": a.seq, "step_s": dt,
       "tokens_per_s": tok / dt, "tflops_4n": 4 * N * tok / dt / 1e12, "matmul_params": N,
       "loss": "GRPO (lorastep.grpo_loss)", "entropy_coeff": a.entropy_coeff, "optimizer": opt is not None,
       "torch": torch.__version__}
if cuda:
    out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
else:
    out["peak_rss_gib"] = lorastep.rss_kib("VmHWM") / 2**20
print(json.dumps(out))
