#!/usr/bin/env python3
"""Writes a Qwen2-shaped Hugging Face checkpoint with random weights (transformers' initializer, seeded)
for make bench-compare: config.json and model.safetensors in OUT. Both sides of the comparison load
these weights: PyTorch from the checkpoint, dartc from its ONNX export (models/export/export_qwen2.py).

usage: make_model.py -o OUT [--layers 12 --hidden 768 --heads 12 --kv-heads 2 --intermediate 2048
                            --vocab 32768 --max-positions 4096 --seed 0]
"""
import argparse
import json
import os
import sys

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--max-positions", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.hidden % a.heads or a.heads % a.kv_heads:
        sys.exit(f"make_model: hidden {a.hidden} must divide into {a.heads} heads, and heads into {a.kv_heads} kv heads")
    conf = Qwen2Config(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate,
                       num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                       max_position_embeddings=a.max_positions, rms_norm_eps=1e-6, rope_theta=1e6,
                       tie_word_embeddings=True, use_sliding_window=False, use_cache=True, hidden_act="silu",
                       initializer_range=0.02, bos_token_id=0, eos_token_id=1, pad_token_id=0, dtype="float32",
                       architectures=["Qwen2ForCausalLM"])
    torch.manual_seed(a.seed)
    model = Qwen2ForCausalLM(conf).eval()
    model.save_pretrained(a.output, safe_serialization=True)
    n = sum(p.numel() for p in model.parameters())
    emb = model.model.embed_tokens.weight.numel()
    json.dump({"output": os.path.abspath(a.output), "params": n, "params_without_embedding": n - emb}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
