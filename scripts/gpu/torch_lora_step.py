#!/usr/bin/env python3
"""The PyTorch side of scripts/gpu-check.sh: the train step dartc's train.onnx
makes (forward, backward, LoRA on q/k/v/o/gate/up/down, AdamW on the adapters),
on a Qwen2 model of the same shape, for the ratio of throughputs.

Reads the synthesized model's config.json (dartc models synth), builds
transformers' Qwen2ForCausalLM with random weights, wraps it with PEFT's LoRA
when peft is installed (else a plain LoRA wrapper written here, said in the
output), and times --steps steps after --warmup on [batch, seq] random ids.
Prints one JSON object: tokens/s, seconds per step, peak device memory and
TFLOP/s counted as 4·N·tokens (forward 2N, backward to the activations 2N; N
the parameters of the matmuls, lm_head included).

usage: torch_lora_step.py CONFIG.json --batch B --seq T [--rank 16 --alpha 32]
       [--device cuda|cpu] [--dtype bf16|fp32] [--steps 10] [--warmup 3]
"""
import argparse, json, sys, time

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
a = ap.parse_args()

try:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
except ImportError as e:
    print(json.dumps({"skipped": f"needs torch and transformers: {e}"}))
    sys.exit(0)

cfg = json.load(open(a.config))
conf = Qwen2Config(**{k: v for k, v in cfg.items() if k not in ("architectures", "torch_dtype", "model_type")})
dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
model = Qwen2ForCausalLM(conf).to(a.device, dtype)
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
try:
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=a.alpha, target_modules=targets, lora_dropout=0.0))
    lora = "peft"
except ImportError:
    # No PEFT on this host: the same computation, y = Wx + (α/r)·B(Ax).
    class LoRA(torch.nn.Module):
        def __init__(self, base, r, alpha):
            super().__init__()
            self.base, self.scale = base, alpha / r
            self.A = torch.nn.Parameter(torch.randn(r, base.in_features, device=base.weight.device, dtype=base.weight.dtype) * 0.01)
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device, dtype=base.weight.dtype))
        def forward(self, x):
            return self.base(x) + self.scale * torch.nn.functional.linear(torch.nn.functional.linear(x, self.A), self.B)
    for p in model.parameters():
        p.requires_grad_(False)
    for name, mod in list(model.named_modules()):
        for t in targets:
            child = getattr(mod, t, None)
            if isinstance(child, torch.nn.Linear):
                setattr(mod, t, LoRA(child, a.rank, a.alpha))
    lora = "plain LoRA (peft not installed)"
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-5)
H, V, L = conf.hidden_size, conf.vocab_size, conf.num_hidden_layers
hd = H // conf.num_attention_heads
per_layer = H * conf.num_attention_heads * hd * 2 + 2 * H * conf.num_key_value_heads * hd + 3 * H * conf.intermediate_size
N = L * per_layer + V * H
ids = torch.randint(0, V, (a.batch, a.seq), device=a.device)
sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
if a.device.startswith("cuda"):
    torch.cuda.reset_peak_memory_stats()
for i in range(a.warmup + a.steps):
    if i == a.warmup:
        sync(); t0 = time.time()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step(); opt.zero_grad(set_to_none=True)
sync()
dt = (time.time() - t0) / a.steps
tok = a.batch * a.seq
out = {"lora": lora, "dtype": a.dtype, "device": a.device, "batch": a.batch, "seq": a.seq, "step_s": dt,
       "tokens_per_s": tok / dt, "tflops_4n": 4 * N * tok / dt / 1e12, "matmul_params": N,
       "torch": torch.__version__}
if a.device.startswith("cuda"):
    out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
print(json.dumps(out))
