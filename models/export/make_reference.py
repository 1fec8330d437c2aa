#!/usr/bin/env python3
"""Compute PyTorch reference outputs for the tiny Qwen2.5 fixtures: reference.safetensors + reference.json.

The model is rebuilt from the same seed as `export_qwen2.py --tiny-random`, so the references and the
committed ONNX exports share their weights; this script checks that by running both exports with
onnxruntime on the reference inputs and fails if they disagree with PyTorch. The dual LoRA is applied by
forward hooks on the target nn.Linear modules (independent of dartc); gradients come from torch autograd in
float64. Every tensor name, shape, dtype and meaning is written to reference.json and README.md.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import hashlib
import json
import os
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime
import safetensors
import safetensors.numpy
import torch
import transformers
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

import export_qwen2 as ex

FORMAT = "dartc-export-reference/1"
ROLES = {"reason": 0, "tool": 1}
RANK = 4
ALPHA = 8.0
SCALE = ALPHA / RANK
ADAPTER_STD = 0.05
BETA = 0.1
# (module path inside a decoder layer, short name) in the order adapters are drawn
TARGETS = [("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"),
           ("self_attn.o_proj", "o"), ("mlp.gate_proj", "gate"), ("mlp.up_proj", "up"),
           ("mlp.down_proj", "down")]

PAD_ID = ex.TINY_ENDOFTEXT_ID
# Two sequences of lengths 7 and 4, the second left padded to 7 with <|endoftext|>.
INPUT_IDS = [[17, 512, 1033, 7, 1999, 256, 88],
             [PAD_ID, PAD_ID, PAD_ID, 640, 3, 1500, 42]]
ATTENTION_MASK = [[1, 1, 1, 1, 1, 1, 1],
                  [0, 0, 0, 1, 1, 1, 1]]
ROLE_IDS = [[0, 1, 1, 0, 0, 1, 0],
            [0, 0, 0, 1, 0, 1, 1]]
DECODE_IDS = [[901], [5]]


def adapter_name(layer: int, target: str, ab: str, role: str) -> str:
    return f"model.layers.{layer}.{target}.lora_{ab}.{role}.weight"


def make_adapters(model, seed: int) -> dict[str, torch.Tensor]:
    """Draws A_k [in, r] and B_k [r, out] ~ N(0, 0.05²) for every layer, target and role, in a fixed order."""
    gen = torch.Generator().manual_seed(seed)
    adapters = {}
    for i, layer in enumerate(model.model.layers):
        for target, _ in TARGETS:
            linear = layer.get_submodule(target)
            for role in ROLES:
                adapters[adapter_name(i, target, "A", role)] = \
                    ADAPTER_STD * torch.randn(linear.in_features, RANK, generator=gen)
                adapters[adapter_name(i, target, "B", role)] = \
                    ADAPTER_STD * torch.randn(RANK, linear.out_features, generator=gen)
    return adapters


@contextlib.contextmanager
def dual_lora(model, adapters: dict[str, torch.Tensor], role_ids: torch.Tensor):
    """Adds s·Σ_k [role_ids==k] ⊙ ((x·A_k)·B_k) to the output of every target linear while active."""
    handles = []

    def hook_for(layer: int, target: str):
        def hook(module, inputs, output):
            x = inputs[0]
            delta = torch.zeros_like(output)
            for role, k in ROLES.items():
                gate = (role_ids == k).to(output.dtype).unsqueeze(-1)
                a = adapters[adapter_name(layer, target, "A", role)]
                b = adapters[adapter_name(layer, target, "B", role)]
                delta = delta + gate * ((x @ a) @ b)
            return output + SCALE * delta
        return hook

    try:
        for i, layer in enumerate(model.model.layers):
            for target, _ in TARGETS:
                handles.append(layer.get_submodule(target).register_forward_hook(hook_for(i, target)))
        yield
    finally:
        for h in handles:
            h.remove()


FLOAT64_ATTENTION = "same_dtype_eager"


def same_dtype_eager_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """Eager attention with the softmax in the inputs' dtype.

    transformers' eager attention takes the softmax in float32 whatever the model dtype; in float64 that
    rounds the probabilities to float32 and turns the float64 mask minimum into -inf (NaN on pad rows).
    """
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)  # query head h reads kv head h // groups
    value = value.repeat_interleave(groups, dim=1)
    scores = (query @ key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1)
    return (probs @ value).transpose(1, 2).contiguous(), probs


def rms_norm_same_dtype(self, x):
    """Qwen2RMSNorm without its float32 cast: x / sqrt(mean(x²) + eps) · weight, in x's dtype."""
    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


def rotary_same_dtype(self, x, position_ids):
    """Qwen2RotaryEmbedding without its float32 cast: the angles position·inv_freq and their cos/sin in
    x's dtype (inv_freq itself stays the float32 value, upcast, as in the exported graphs)."""
    freqs = position_ids[..., None].to(x.dtype) * self.inv_freq.to(x.dtype)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling


def use_same_dtype_arithmetic(model) -> None:
    """Makes a float64 copy of the model compute in float64 throughout.

    transformers' Qwen2 takes the RMSNorm, the rotary angles and the eager softmax in float32 whatever the
    model dtype; a float64 reference must not round to float32 anywhere (central differences see it).
    """
    model.config._attn_implementation = FLOAT64_ATTENTION
    for module in model.modules():
        if getattr(module, "config", model.config)._attn_implementation != FLOAT64_ATTENTION:
            raise RuntimeError("reference: float64 model does not share one config")
        if type(module).__name__ == "Qwen2RMSNorm":
            module.forward = types.MethodType(rms_norm_same_dtype, module)
        elif type(module).__name__ == "Qwen2RotaryEmbedding":
            if module.rope_type != "default":
                raise RuntimeError(f"reference: rope_type {module.rope_type} is not handled")
            module.forward = types.MethodType(rotary_same_dtype, module)


AttentionInterface.register(FLOAT64_ATTENTION, same_dtype_eager_attention)
AttentionMaskInterface.register(FLOAT64_ATTENTION, eager_mask)


def empty_past(config, batch: int, dtype) -> list[torch.Tensor]:
    return [torch.zeros(ex.kv_shape(config, batch, 0), dtype=dtype) for _ in range(2 * config.num_hidden_layers)]


def next_token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Entry [b, t] = log_softmax(logits[b, t])[input_ids[b, t+1]], for t < seq-1."""
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    return logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def grpo_loss(logp, old, ref, weights, adv, beta):
    """L = Σ w·(−adv·exp(logp − old) + β·(exp(ref − logp) − (ref − logp) − 1))."""
    ratio = torch.exp(logp - old)
    k3 = torch.exp(ref - logp) - (ref - logp) - 1
    return (weights * (-adv * ratio + beta * k3)).sum()


def run_ort(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = onnxruntime.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def compare(got: np.ndarray, want: np.ndarray, rows_cols=None) -> dict[str, float]:
    """Max absolute difference and that difference relative to max |want|, over the selected entries."""
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    ref = np.abs(want.astype(np.float64))
    if rows_cols is not None:
        diff, ref = diff[rows_cols], ref[rows_cols]
    return {"max_abs": float(diff.max()), "max_rel": float(diff.max() / ref.max())}


def locate_targets(path: Path, model) -> dict[str, dict]:
    """Finds every target linear in an export, as dartc must, and checks its weight against PyTorch's.

    TorchScript: the MatMul node named /model/layers.{i}/{self_attn|mlp}/{x}_proj/MatMul. dynamo: the MatMul
    whose pkg.torch.onnx.name_scopes metadata names the module. Either way the MatMul's second input must be
    an initializer equal to the module's weight transposed ([in, out]); a Transpose in between is followed.
    """
    graph = onnx.load(str(path)).graph  # loads external data too
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    found = {}
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        scopes = [p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"]
        module = None
        if scopes:
            path_list = ast.literal_eval(scopes[0])  # a Python list literal
            if len(path_list) >= 2:
                module = path_list[-2]
        elif node.name.endswith("_proj/MatMul"):
            module = node.name[1:-len("/MatMul")].replace("/", ".")
        if module is None or not any(module.endswith("." + t) for t, _ in TARGETS):
            continue
        weight, transposed = node.input[1], False
        if weight not in inits and weight in producer and producer[weight].op_type == "Transpose":
            weight, transposed = producer[weight].input[0], True
        value = inits[weight] if weight in inits else None
        want = model.get_submodule(module).weight.detach().numpy()
        if value is None or not np.array_equal(value if transposed else value.T, want):
            raise RuntimeError(f"reference: {path}: {node.name} ({module}) does not read {module}.weight")
        found[module] = {"node": node.name, "weight_initializer": weight,
                         "weight_shape": list(value.shape), "transpose_node": transposed}
    layers = model.config.num_hidden_layers
    want_modules = {f"model.layers.{i}.{t}" for i in range(layers) for t, _ in TARGETS}
    if set(found) != want_modules:
        raise RuntimeError(f"reference: {path}: targets found {sorted(found)}, want {sorted(want_modules)}")
    order = [f"model.layers.{i}.{t}" for i in range(layers) for t, _ in TARGETS]
    return {module: found[module] for module in order}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fixture-dir", type=Path, default=Path(__file__).parent / "testdata" / "tiny-qwen2.5")
    p.add_argument("--seed", type=int, default=0, help="model seed, as given to export_qwen2.py --seed")
    p.add_argument("--adapter-seed", type=int, default=1)
    p.add_argument("--grpo-seed", type=int, default=2)
    args = p.parse_args(argv)
    out = args.fixture_dir
    torch.set_num_threads(1)

    model = ex.build_tiny_model(args.seed)
    config = model.config
    committed = json.loads((out / "config.json").read_text())
    if committed != json.loads(json.dumps(config.to_dict(), sort_keys=True)):
        raise SystemExit(f"reference: {out}/config.json differs from the --tiny-random config; rerun regen.sh")
    wrapper = ex.FlatKVModel(model).eval()
    layers = config.num_hidden_layers

    input_ids = torch.tensor(INPUT_IDS)
    attention_mask = torch.tensor(ATTENTION_MASK)
    position_ids = ex.position_ids_for(attention_mask)
    role_ids = torch.tensor(ROLE_IDS)
    dec_ids = torch.tensor(DECODE_IDS)
    dec_mask = torch.cat([attention_mask, torch.ones(2, 1, dtype=torch.long)], dim=1)
    dec_pos = position_ids.max(dim=1, keepdim=True).values + 1
    valid = attention_mask.bool()
    # a log-prob entry t is usable when both its input (t) and its target (t+1) are real tokens
    valid_lp = valid[:, :-1] & valid[:, 1:]

    T: dict[str, torch.Tensor] = {}
    meaning: dict[str, str] = {}

    def put(name, tensor, what):
        T[name] = tensor.detach().clone().contiguous()
        meaning[name] = what

    put("input_ids", input_ids, "prefill tokens; row 1 left padded with <|endoftext|> (2000)")
    put("attention_mask", attention_mask, "prefill mask, 0 on pads")
    put("position_ids", position_ids, "cumsum(attention_mask)-1, pads set to 1 (HF's rule)")
    put("role_ids", role_ids, "role per prefill position: 0 reason, 1 tool; both roles in each row")
    put("decode.input_ids", dec_ids, "one new token per row for the cached decode step")
    put("decode.attention_mask", dec_mask, "attention_mask with a 1 appended")
    put("decode.position_ids", dec_pos, "last position + 1 per row")

    # 1. Base model, no adapters: prefill with an empty cache, then one cached step.
    with torch.no_grad():
        pre = wrapper(input_ids, attention_mask, position_ids, *empty_past(config, 2, torch.float32))
        dec = wrapper(dec_ids, dec_mask, dec_pos, *pre[1:])
    put("prefill.logits", pre[0], "base logits of the prefill (empty past); pad positions are not meaningful")
    put("decode.logits", dec[0], "base logits of the decode step, past = prefill.present.*")
    for i in range(layers):
        for j, kv in enumerate(("key", "value")):
            put(f"prefill.present.{i}.{kv}", pre[1 + 2 * i + j], f"layer {i} {kv} cache after the prefill")
            put(f"decode.present.{i}.{kv}", dec[1 + 2 * i + j], f"layer {i} {kv} cache after the decode step")
    base_lp = next_token_logprobs(pre[0], input_ids)
    put("base.logprobs", base_lp, "next-token log-probs of the base model (adapters off), float32")

    # 2. Dual adapters, float32, whole sequence without a cache.
    adapters = make_adapters(model, args.adapter_seed)
    for name, a in adapters.items():
        put(name, a, "adapter A [in, r]" if ".lora_A." in name else "adapter B [r, out]")
    with torch.no_grad(), dual_lora(model, adapters, role_ids):
        lora = wrapper(input_ids, attention_mask, position_ids, *empty_past(config, 2, torch.float32))
    put("lora.logits", lora[0], "logits with the dual adapters and role_ids; pad positions are not meaningful")
    put("lora.logprobs", next_token_logprobs(lora[0], input_ids), "next-token log-probs with the dual adapters")

    # 3. GRPO-style loss and its gradients w.r.t. every adapter tensor, float64 (exact upcast of the weights).
    gen = torch.Generator().manual_seed(args.grpo_seed)
    weights = (0.5 + torch.rand(2, 6, generator=gen, dtype=torch.float64)) * valid_lp
    adv = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    noise = 0.1 * torch.rand(2, 6, generator=gen, dtype=torch.float64) - 0.05
    if not ((adv[valid_lp] > 0).any() and (adv[valid_lp] < 0).any()):
        raise RuntimeError("reference: advantages need both signs on weighted positions; change --grpo-seed")

    model64 = copy.deepcopy(model).to(torch.float64)
    use_same_dtype_arithmetic(model64)
    wrapper64 = ex.FlatKVModel(model64).eval()
    empty64 = empty_past(config, 2, torch.float64)
    with torch.no_grad():
        ref = next_token_logprobs(wrapper64(input_ids, attention_mask, position_ids, *empty64)[0], input_ids)
    ad64 = {n: a.to(torch.float64).requires_grad_(True) for n, a in adapters.items()}
    with dual_lora(model64, ad64, role_ids):
        logp = next_token_logprobs(wrapper64(input_ids, attention_mask, position_ids, *empty64)[0], input_ids)
    old = logp.detach() + noise
    loss = grpo_loss(logp, old, ref, weights, adv, BETA)
    grads = torch.autograd.grad(loss, list(ad64.values()))

    def loss64_at(name, index, delta):
        shifted = {n: a.detach().clone() for n, a in ad64.items()}
        shifted[name][index] += delta
        with torch.no_grad(), dual_lora(model64, shifted, role_ids):
            lp = next_token_logprobs(wrapper64(input_ids, attention_mask, position_ids, *empty64)[0], input_ids)
        return grpo_loss(lp, old, ref, weights, adv, BETA).item()

    # Self-check of the autograd gradients: central differences on a few entries of each kind of tensor.
    fd_check = []
    names = list(ad64)
    for pick in (0, 3, 17, 30, len(names) - 1):
        name = names[pick]
        index = tuple(int(d) // 2 for d in ad64[name].shape)
        eps = 1e-6
        fd = (loss64_at(name, index, eps) - loss64_at(name, index, -eps)) / (2 * eps)
        ag = grads[pick][index].item()
        fd_check.append({"tensor": name, "index": list(index), "autograd": ag, "central_difference": fd})
        if abs(fd - ag) > 1e-6 * max(1.0, abs(ag)):
            raise RuntimeError(f"reference: autograd {ag} vs central difference {fd} for {name}{index}")
    put("grpo.weights", weights, "token weights w >= 0; 0 where the input or the target is a pad")
    put("grpo.advantages", adv, "advantages, both signs")
    put("grpo.old_logprobs", old, "grpo.logprobs + U(-0.05, 0.05): the ratio stays within a 0.2 clip")
    put("grpo.ref_logprobs", ref, "base (adapters off) log-probs in float64, the KL reference")
    put("grpo.logprobs", logp, "next-token log-probs with the dual adapters, float64")
    put("grpo.loss", loss.reshape(1), "the loss L, float64, shape [1]")
    for (name, _), g in zip(ad64.items(), grads):
        put(f"grad.{name}", g, f"dL/d({name}), float64 autograd")

    # 3b. The same loss in float32 (same w, adv, old, ref rounded to float32), for float32 training graphs.
    ad32 = {n: a.clone().requires_grad_(True) for n, a in adapters.items()}
    with dual_lora(model, ad32, role_ids):
        logp32 = next_token_logprobs(
            wrapper(input_ids, attention_mask, position_ids, *empty_past(config, 2, torch.float32))[0], input_ids)
    loss32 = grpo_loss(logp32, old.float(), ref.float(), weights.float(), adv.float(), BETA)
    grads32 = torch.autograd.grad(loss32, list(ad32.values()))
    put("f32.grpo.logprobs", logp32, "grpo.logprobs computed in float32")
    put("f32.grpo.loss", loss32.reshape(1), "the loss computed in float32 from the float32-rounded grpo.* inputs")
    for (name, _), g in zip(ad32.items(), grads32):
        put(f"f32.grad.{name}", g, f"dL/d({name}) computed in float32")

    for name, t in T.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise RuntimeError(f"reference: {name} has non-finite values")

    # 4. Check both committed exports against the PyTorch base references with onnxruntime.
    inputs, outputs = ex.io_names(layers)
    empty = {n: np.zeros(ex.kv_shape(config, 2, 0), np.float32) for n in inputs[3:]}
    ort_check, targets = {}, {}
    for exporter in ("torchscript", "dynamo"):
        path = out / exporter / "model.onnx"
        got = run_ort(path, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy(),
                             "position_ids": position_ids.numpy(), **empty})
        past = {n: got[o] for n, o in zip(inputs[3:], outputs[1:])}
        got_dec = run_ort(path, {"input_ids": dec_ids.numpy(), "attention_mask": dec_mask.numpy(),
                                 "position_ids": dec_pos.numpy(), **past})
        check = {
            "prefill.logits (non-pad positions)": compare(got["logits"], T["prefill.logits"].numpy(),
                                                          valid.numpy()),
            "prefill.logits (last position)": compare(got["logits"][:, -1], T["prefill.logits"][:, -1].numpy()),
            "decode.logits": compare(got_dec["logits"], T["decode.logits"].numpy()),
        }
        for i in range(layers):
            for kv in ("key", "value"):
                check[f"decode.present.{i}.{kv}"] = compare(got_dec[f"present.{i}.{kv}"],
                                                            T[f"decode.present.{i}.{kv}"].numpy())
        worst = max(c["max_rel"] for c in check.values())
        if worst > 1e-5:
            raise RuntimeError(f"reference: {path} differs from PyTorch by {worst:g} relative (> 1e-5)")
        ort_check[exporter] = check
        targets[exporter] = locate_targets(path, model)

    files = {}
    for rel in ("config.json", "torchscript/model.onnx", "dynamo/model.onnx", "dynamo/model.onnx.data"):
        files[rel] = {"bytes": (out / rel).stat().st_size, "sha256": sha256(out / rel)}

    arrays = {n: t.numpy() for n, t in T.items()}
    atomic_write(out / "reference.safetensors",
                 lambda tmp: safetensors.numpy.save_file(arrays, tmp, metadata={"format": FORMAT}))

    doc = {
        "format": FORMAT,
        "made_by": "models/export/make_reference.py (run by models/export/regen.sh)",
        "model": {"seed": args.seed, "config": "config.json", "vocab_size": config.vocab_size,
                  "num_hidden_layers": layers, "hidden_size": config.hidden_size,
                  "num_attention_heads": config.num_attention_heads,
                  "num_key_value_heads": config.num_key_value_heads,
                  "head_dim": ex.kv_shape(config, 1, 0)[3], "intermediate_size": config.intermediate_size,
                  "attn_implementation": "eager"},
        "batch": {"lengths": [7, 4], "padding": "left", "pad_token_id": PAD_ID},
        "lora": {"roles": ROLES, "rank": RANK, "alpha": ALPHA, "scale": SCALE, "init_std": ADAPTER_STD,
                 "seed": args.adapter_seed,
                 "targets": [t for t, _ in TARGETS],
                 "formula": "y = x·Wᵀ + b + scale·Σ_k [role_ids==k] ⊙ ((x·A_k)·B_k)",
                 "names": "model.layers.{i}.{target}.lora_{A|B}.{role}.weight; A [in, rank], B [rank, out]"},
        "grpo": {"beta": BETA, "seed": args.grpo_seed, "loss": loss.item(), "f32_loss": loss32.item(),
                 "central_difference_check": fd_check,
                 "formula": "L = Σ_{b,t} w[b,t]·(−adv[b,t]·exp(logp[b,t] − old[b,t]) + β·k3[b,t]), "
                            "k3 = exp(ref − logp) − (ref − logp) − 1",
                 "logprob_index": "logp[b, t] = log_softmax(logits[b, t])[input_ids[b, t+1]], t = 0..5"},
        "onnxruntime_check": ort_check,
        "targets": targets,
        "files": files,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
        "tensors": {n: {"dtype": str(arrays[n].dtype), "shape": list(arrays[n].shape), "meaning": meaning[n]}
                    for n in T},
    }
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    atomic_write(out / "reference.json", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    print(json.dumps({"loss": doc["grpo"]["loss"], "f32_loss": doc["grpo"]["f32_loss"],
                      "tensors": len(T), "onnxruntime_check": {
                          k: max(c["max_rel"] for c in v.values()) for k, v in ort_check.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
