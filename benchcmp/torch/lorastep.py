"""The PyTorch side of dartc's comparisons: a Qwen2 model with LoRA adapters and the train step dartc's
train.onnx computes (forward, the GRPO loss of DESIGN.md §6, backward to the adapters only).

One implementation for both users: benchcmp/torch/worker.py (make bench-compare, eager fp32 on the CPU) and
scripts/gpu/torch_lora_step.py (scripts/gpu-check.sh, bf16 on CUDA, with AdamW).

The loss is the one passes.GRPOHead emits, per next-token position t (the log-prob of input_ids[t+1]):

    ratio = exp(lp − old),  pg = max(−A·ratio, −A·clip(ratio, 1−clip_low, 1+clip_high))
    k3    = clamp(exp(ref − lp) − (ref − lp) − 1, −10, 10)
    loss  = Σ w·(pg + kl_coef·k3 − entropy_coeff·H)

written as a PyTorch user writes it (full logits, log_softmax, gather); the entropy H is computed only when
its coefficient is not zero.
"""
from __future__ import annotations

import json
import os

import torch

# dartc's default LoRA targets (passes.DefaultTargets: q k v o gate up down) as Qwen2 module names.
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
KL_CLAMP = 10.0


def qwen2_config(config: dict):
    """transformers' Qwen2Config from a config.json dict (dartc models synth's or a checkpoint's)."""
    from transformers import Qwen2Config

    return Qwen2Config(**{k: v for k, v in config.items() if k not in ("architectures", "torch_dtype", "model_type")})


def build_model(checkpoint: str | None = None, config: dict | None = None, dtype=torch.float32, device="cpu",
                attn: str = "sdpa"):
    """A Qwen2ForCausalLM: the checkpoint's weights, or random ones (transformers' init) for a config dict."""
    from transformers import Qwen2ForCausalLM

    if checkpoint is not None:
        model = Qwen2ForCausalLM.from_pretrained(checkpoint, dtype=dtype, attn_implementation=attn)
    else:
        conf = qwen2_config(config)
        conf._attn_implementation = attn
        model = Qwen2ForCausalLM(conf)
    return model.to(device, dtype)


class PlainLoRA(torch.nn.Module):
    """y = Wx + (α/r)·B(Ax): PEFT's LoRA computation, for hosts without peft."""

    def __init__(self, base, r, alpha):
        super().__init__()
        w = base.weight
        self.base, self.scale = base, alpha / r
        self.A = torch.nn.Parameter(torch.randn(r, base.in_features, device=w.device, dtype=w.dtype) / base.in_features ** 0.5)
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype))

    def forward(self, x):
        return self.base(x) + self.scale * torch.nn.functional.linear(torch.nn.functional.linear(x, self.A), self.B)


class DualLoRA(torch.nn.Module):
    """dartc's dual gated LoRA in eager PyTorch: y = Wx + (α/r)·Σ_k [role == k]·B_k(A_k x), the role mask
    set per batch by set_roles."""

    def __init__(self, base, r, alpha, roles=2):
        super().__init__()
        w = base.weight
        self.base, self.scale, self.gates = base, alpha / r, None
        self.A = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(r, base.in_features, device=w.device, dtype=w.dtype) / base.in_features ** 0.5)
            for _ in range(roles))
        self.B = torch.nn.ParameterList(
            torch.nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype)) for _ in range(roles))

    def forward(self, x):
        y = self.base(x)
        for k, (a, b) in enumerate(zip(self.A, self.B)):
            d = torch.nn.functional.linear(torch.nn.functional.linear(x, a), b)
            y = y + self.scale * (d if self.gates is None else d * self.gates[k])
        return y


def _wrap(model, targets, make):
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for _, mod in list(model.named_modules()):
        for t in targets:
            child = getattr(mod, t, None)
            if isinstance(child, torch.nn.Linear):
                w = make(child)
                setattr(mod, t, w)
                wrapped.append(w)
    if not wrapped:
        raise SystemExit(f"lorastep: no linear named {targets} in the model")
    return wrapped


def add_lora(model, kind="peft", rank=16, alpha=32.0, targets=None):
    """Freezes the backbone and adds LoRA adapters on targets. kind: peft (PEFT's single LoRA, B = 0 at
    init), plain (the same computation written here), dual (DualLoRA, two roles). Returns (model, name)."""
    targets = targets or DEFAULT_TARGETS
    if kind == "peft":
        from peft import LoraConfig, get_peft_model
        import peft

        cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, bias="none")
        return get_peft_model(model, cfg), f"peft {peft.__version__} LoRA"
    if kind == "plain":
        _wrap(model, targets, lambda lin: PlainLoRA(lin, rank, alpha))
        return model, "plain LoRA"
    if kind == "dual":
        mods = _wrap(model, targets, lambda lin: DualLoRA(lin, rank, alpha))
        model._dual_lora = mods
        return model, "dual gated LoRA (eager)"
    raise SystemExit(f"lorastep: unknown LoRA kind {kind!r} (peft, plain or dual)")


def set_roles(model, role_ids):
    """Sets the dual LoRA's gates from role_ids [batch, seq] (no-op for single LoRA)."""
    mods = getattr(model, "_dual_lora", None)
    if not mods:
        return
    n = len(mods[0].A)
    dt = mods[0].A[0].dtype
    gates = [(role_ids == k).to(dt).unsqueeze(-1) for k in range(n)]
    for m in mods:
        m.gates = gates


def token_logprobs(logits, input_ids):
    """log p(input_ids[t+1] | ≤ t) for t < seq−1, [batch, seq−1], and the log-softmax it came from."""
    lsm = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return lsm.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1), lsm


def grpo_loss(logits, b):
    """The GRPO loss over the batch dict b (tensors [batch, seq] at next-token positions t, scalars)."""
    lp, lsm = token_logprobs(logits, b["input_ids"])
    w, adv = b["token_weights"][:, :-1], b["advantages"][:, :-1]
    old, ref = b["old_logprobs"][:, :-1], b["ref_logprobs"][:, :-1]
    ratio = torch.exp(lp - old)
    pg = torch.maximum(-adv * ratio, -adv * torch.clamp(ratio, 1 - b["clip_low"], 1 + b["clip_high"]))
    d = ref - lp
    k3 = torch.clamp(torch.exp(d) - d - 1, -KL_CLAMP, KL_CLAMP)
    per_tok = pg + b["kl_coef"] * k3
    if b["entropy_coeff"] != 0:
        ent = -(lsm.exp() * lsm).sum(-1)
        per_tok = per_tok - b["entropy_coeff"] * ent
    return (w * per_tok).sum()


def forward_logits(model, b):
    set_roles(model, b.get("role_ids"))
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], position_ids=b["position_ids"],
                use_cache=False)
    return out.logits


def train_step(model, b, optimizer=None):
    """One step: forward, the GRPO loss, backward to the adapters (and optimizer.step when given).
    Returns the loss as a float."""
    if optimizer is None:
        model.zero_grad(set_to_none=True)
    loss = grpo_loss(forward_logits(model, b), b)
    loss.backward()
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


@torch.no_grad()
def logprobs(model, b):
    """Forward-only log-probs [batch, seq]: 0 at the last position, as logprobs.onnx writes them."""
    lp, _ = token_logprobs(forward_logits(model, b), b["input_ids"])
    return torch.nn.functional.pad(lp, (0, 1))


def batch_tensors(d: dict, device="cpu") -> dict:
    """Tensors from a batch dict of flat lists ([batch·seq]) and scalars, as the bench driver sends it."""
    B, S = int(d["batch"]), int(d["seq"])
    out = {}
    for k in ("input_ids", "attention_mask", "position_ids", "role_ids"):
        out[k] = torch.tensor(d[k], dtype=torch.long, device=device).view(B, S)
    for k in ("token_weights", "advantages", "old_logprobs", "ref_logprobs"):
        out[k] = torch.tensor(d[k], dtype=torch.float32, device=device).view(B, S)
    for k in ("clip_low", "clip_high", "kl_coef", "entropy_coeff"):
        out[k] = float(d[k])
    return out


def random_batch(vocab: int, batch: int, seq: int, device="cpu", seed=0) -> dict:
    """A batch of random ids, every next-token position weighted, random per-row advantages, old and
    ref log-probs at log(1/vocab) (a near-uniform model's): what scripts/gpu/torch_lora_step.py times."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    w = torch.ones(batch, seq)
    w[:, -1] = 0
    lp0 = -float(torch.log(torch.tensor(float(vocab))))
    b = {"input_ids": ids, "attention_mask": torch.ones(batch, seq, dtype=torch.long),
         "position_ids": torch.arange(seq).expand(batch, seq).contiguous(), "role_ids": torch.zeros(batch, seq, dtype=torch.long),
         "token_weights": w, "advantages": torch.randn(batch, 1, generator=g).expand(batch, seq).contiguous(),
         "old_logprobs": torch.full((batch, seq), lp0), "ref_logprobs": torch.full((batch, seq), lp0)}
    b = {k: v.to(device) for k, v in b.items()}
    b.update(clip_low=0.2, clip_high=0.2, kl_coef=0.05, entropy_coeff=0.0)
    return b


def matmul_params(conf) -> int:
    """N, the parameters of the matmuls (lm_head included), for 4·N·tokens FLOP counts."""
    H, V, L = conf.hidden_size, conf.vocab_size, conf.num_hidden_layers
    hd = getattr(conf, "head_dim", None) or H // conf.num_attention_heads
    per_layer = H * conf.num_attention_heads * hd * 2 + 2 * H * conf.num_key_value_heads * hd + 3 * H * conf.intermediate_size
    return L * per_layer + V * H


def read_json(path):
    with open(path) as f:
        return json.load(f)


def rss_kib(field="VmRSS") -> int:
    """This process's VmRSS or VmHWM (peak) in KiB, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux: /proc/self/clear_refs, 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def set_threads(n: int):
    if n > 0:
        torch.set_num_threads(n)
    os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
