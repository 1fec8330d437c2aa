#!/usr/bin/env python3
"""PyTorch autocast references for dartc's mixed-precision graphs: autocast-reference.safetensors + .json.

The tiny Qwen2.5 of the fixtures (rebuilt from the same seed as export_qwen2.py --tiny-random) with its
backbone weights stored in float16 or bfloat16 as `dartc compile --precision fp16|bf16` stores them (the
linear weights, their biases, the embedding and the lm_head; RMSNorm weights stay float32), the dual LoRA of
make_reference.py with float32 adapters applied by forward hooks, and the forward pass run under
torch.autocast(cpu, dtype): matmuls in the low type (adapters cast at use), softmax and RMSNorm statistics in
float32 as transformers computes them. On the committed reference batch (reference.safetensors: ids, mask,
positions, roles, token weights, advantages, old and reference log-probs, adapters) it computes the next-token
log-probs, the GRPO loss of make_reference.py in float32 from the float32 log-probs, and the loss's gradients
with respect to every float32 adapter tensor. dartc's train.onnx gradients are compared with these.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import safetensors.numpy
import safetensors.torch
import torch
import transformers

import export_qwen2 as ex
import make_reference as mr

FORMAT = "dartc-autocast-reference/1"
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def low_precision_backbone(model, dtype):
    """Stores the linear weights and biases, the embedding and the lm_head in dtype; norms stay float32."""
    low = copy.deepcopy(model)
    for module in low.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            module.to(dtype)
    return low


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fixture-dir", type=Path, default=Path(__file__).parent / "testdata" / "tiny-qwen2.5")
    p.add_argument("--seed", type=int, default=0, help="model seed, as given to export_qwen2.py --seed")
    args = p.parse_args(argv)
    out = args.fixture_dir
    torch.set_num_threads(1)
    torch.manual_seed(0)

    ref = safetensors.torch.load_file(str(out / "reference.safetensors"))
    model = ex.build_tiny_model(args.seed).eval()
    config = model.config
    input_ids, attention_mask = ref["input_ids"], ref["attention_mask"]
    position_ids, role_ids = ref["position_ids"], ref["role_ids"]
    names = [n for n in ref if ".lora_" in n and not n.startswith(("grad.", "f32."))]
    weights = ref["grpo.weights"].float()
    adv = ref["grpo.advantages"].float()
    old = ref["grpo.old_logprobs"].float()
    refl = ref["grpo.ref_logprobs"].float()
    empty = lambda: mr.empty_past(config, 2, torch.float32)

    arrays, report = {}, {"format": FORMAT, "torch": torch.__version__, "transformers": transformers.__version__,
                          "command": "python make_autocast_reference.py --fixture-dir "
                          + os.path.relpath(out, Path(__file__).parent), "dtypes": {}}
    for name, dtype in DTYPES.items():
        low = low_precision_backbone(model, dtype)
        wrapper = ex.FlatKVModel(low).eval()
        ad = {n: ref[n].clone().float().requires_grad_(True) for n in names}
        with torch.autocast(device_type="cpu", dtype=dtype), mr.dual_lora(low, ad, role_ids):
            logits = wrapper(input_ids, attention_mask, position_ids, *empty())[0]
        logp = mr.next_token_logprobs(logits.float(), input_ids)
        loss = mr.grpo_loss(logp, old, refl, weights, adv, mr.BETA)
        grads = torch.autograd.grad(loss, list(ad.values()))
        arrays[f"{name}.grpo.logprobs"] = logp.detach().numpy()
        arrays[f"{name}.grpo.loss"] = loss.detach().reshape(1).numpy()
        worst = 0.0
        for n, g in zip(names, grads):
            arrays[f"{name}.grad.{n}"] = g.numpy()
            exact = ref[f"grad.{n}"].double()
            worst = max(worst, float((g.double() - exact).abs().max() / exact.abs().max()))
        report["dtypes"][name] = {
            "loss": loss.item(), "loss_float64_reference": float(ref["grpo.loss"][0]),
            "worst_gradient_vs_float64_autograd": worst,
            "logprobs_max_abs_vs_float64": (logp.detach().double() - ref["grpo.logprobs"]).abs().max().item(),
        }
        if not all(torch.isfinite(g).all() for g in grads):
            raise RuntimeError(f"autocast reference: non-finite gradients in {name}")
    safetensors.numpy.save_file(arrays, str(out / "autocast-reference.safetensors"), metadata={"format": FORMAT})
    (out / "autocast-reference.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
