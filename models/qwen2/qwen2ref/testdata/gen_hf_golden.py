"""Writes hf_golden.json: a tiny random Qwen2ForCausalLM (float32, eager
attention) from Hugging Face transformers, its weights, a left-padded batch,
and the logits and KV caches that transformers computes for a prefill and one
cached decode step. qwen2ref's tests compare against it.

float32, not float64: transformers' eager attention runs its softmax in
float32, where a float64 model's mask value finfo(float64).min becomes -inf,
so every fully masked (left-padding) row turns into NaN and spreads.

Run with an environment holding torch and transformers, e.g. the export
script's virtual environment:
    ../../../export/.venv/bin/python gen_hf_golden.py
"""
import json

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM
from transformers.cache_utils import DynamicCache

torch.manual_seed(20260101)
cfg = Qwen2Config(
    vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=False,
)
cfg._attn_implementation = "eager"
model = Qwen2ForCausalLM(cfg).float().eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        # Larger than HF's init (std 0.02) so that every term matters.
        if name.endswith("norm.weight"):
            p.copy_(1 + 0.1 * torch.randn_like(p))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn_like(p))
        else:
            p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)

ids = torch.tensor([[5, 17, 3, 40, 22], [0, 0, 9, 31, 47]])
mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
step_ids = torch.tensor([[11], [26]])
step_mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], dim=1)
step_pos = pos[:, -1:] + 1

with torch.no_grad():
    cache = DynamicCache()
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True)
    prefill_logits = out.logits
    out2 = model(input_ids=step_ids, attention_mask=step_mask, position_ids=step_pos,
                 past_key_values=out.past_key_values, use_cache=True)

def layer_kv(cache, i):
    if hasattr(cache, "layers"):
        return cache.layers[i].keys, cache.layers[i].values
    return cache.key_cache[i], cache.value_cache[i]

flat = lambda t: t.detach().reshape(-1).tolist()
golden = {
    "transformers": transformers.__version__, "torch": torch.__version__,
    "config": {"layers": 2, "hidden": 16, "heads": 4, "kv_heads": 2, "head_dim": 4, "intermediate": 32,
               "vocab": 48, "rope_theta": 1e6, "rms_eps": 1e-6, "tied": False},
    "weights": {n: flat(p) for n, p in model.named_parameters()},
    "prefill": {"ids": ids.tolist(), "mask": mask.tolist(), "pos": pos.tolist(), "logits": flat(prefill_logits)},
    "decode": {"ids": step_ids.tolist(), "mask": step_mask.tolist(), "pos": step_pos.tolist(),
               "logits": flat(out2.logits),
               "present_key": [flat(layer_kv(out2.past_key_values, i)[0]) for i in range(2)],
               "present_value": [flat(layer_kv(out2.past_key_values, i)[1]) for i in range(2)]},
}
with open("hf_golden.json", "w") as f:
    json.dump(golden, f)
