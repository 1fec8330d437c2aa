"""Trains the mini world's tokenizer and base model from scratch.

Reads the trajectories written by `go run ./models/mini/worldgen -sft FILE`
and the world's corpus, then

1. trains a byte-level BPE tokenizer (Qwen2's pre-tokenizer, NFC, ChatML
   special tokens) with Hugging Face `tokenizers`;
2. trains a tiny Qwen2ForCausalLM on the trajectories, the loss on the
   tokens the policy writes (the prompt and the observations are inserted
   by the environment, as in the agent loop);
3. saves the checkpoint (config.json, model.safetensors), the tokenizer
   (tokenizer.json, tokenizer_config.json), the training log and PyTorch
   reference logits for the parity test.

Every step is seeded; run it as models/mini/regen.sh does.
"""

import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Config, Qwen2ForCausalLM

QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIAL), min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    # The ChatML markers go after the learned vocabulary, as in Qwen2.
    tok.add_special_tokens(SPECIAL)
    return tok


def tokenizer_config():
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 1024,
        "tokenizer_class": "Qwen2Tokenizer",
        "split_special_tokens": False,
    }


def encode_rows(tok, rows, max_len):
    seqs = []
    for r in rows:
        ids, mask = [], []
        for s in r["segments"]:
            e = tok.encode(s["text"]).ids
            ids += e
            mask += [1 if s["gen"] else 0] * len(e)
        end = tok.token_to_id("<|im_end|>")
        ids.append(end)
        mask.append(1)
        if len(ids) > max_len:
            continue
        seqs.append((ids, mask))
    return seqs


def batches(seqs, batch, rng, pad):
    order = list(range(len(seqs)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch + 1, batch):
            chunk = [seqs[j] for j in order[i:i + batch]]
            n = max(len(c[0]) for c in chunk)
            ids = torch.full((batch, n), pad, dtype=torch.long)
            labels = torch.full((batch, n), -100, dtype=torch.long)
            att = torch.zeros((batch, n), dtype=torch.long)
            for b, (x, m) in enumerate(chunk):
                ids[b, :len(x)] = torch.tensor(x)
                att[b, :len(x)] = 1
                # labels[t] is the token at t; the model shifts them itself.
                labels[b, :len(x)] = torch.tensor([t if k else -100 for t, k in zip(x, m)])
            yield ids, att, labels


def common_prefix(seqs):
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs):
            return seqs[0][:i]
    return seqs[0][:n]


def shared_prefix_loss(model, prefix, ids, att, labels):
    """The loss of prefix + ids, the prefix's keys and values computed once
    and repeated over the batch (the same numbers as a full forward)."""
    b = ids.shape[0]
    out = model(input_ids=torch.tensor([prefix]), use_cache=True)
    cache = out.past_key_values
    cache.batch_repeat_interleave(b)
    p = len(prefix)
    full = torch.cat([torch.ones((b, p), dtype=att.dtype), att], dim=1)
    pos = torch.arange(p, p + ids.shape[1]).unsqueeze(0).expand(b, -1)
    return model(input_ids=ids, attention_mask=full, position_ids=pos, past_key_values=cache, labels=labels).loss


def write_reference(model, tok, first_prompt, test, out):
    """Reference logits for the parity test: the prompt of the first test
    question and a first turn, whole-sequence forward, last 8 positions."""
    q = json.loads(open(test).readline())
    prompt = first_prompt[:first_prompt.index("Question: ") + len("Question: ")] + q["question"] + "\n<|im_end|>\n<|im_start|>assistant\n"
    ids = tok.encode(prompt).ids + tok.encode("<think> I need to search " + q["entity"] + ". </think>\n<search> " + q["entity"] + " </search>").ids
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    ref = {"text": prompt, "ids": ids, "positions": list(range(len(ids) - 8, len(ids))),
           "logits": [[float(x) for x in logits[p]] for p in range(len(ids) - 8, len(ids))],
           "argmax": [int(logits[p].argmax()) for p in range(len(ids))]}
    with open(os.path.join(out, "reference-logits.json"), "w") as f:
        json.dump(ref, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sft", required=True, help="trajectories from worldgen -sft")
    ap.add_argument("--corpus", required=True, help="the world's corpus.jsonl")
    ap.add_argument("--test", required=True, help="test questions, for the reference logits")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=384)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=768)
    ap.add_argument("--stop-at", type=int, default=450, help="stop after this step, the schedule still spanning --steps (0: run them all)")
    ap.add_argument("--reference-only", action="store_true", help="only write reference-logits.json for the checkpoint and tokenizer already in --out")
    ap.add_argument("--save-every", type=int, default=0, help="also save the checkpoint every N steps (0: at the end only)")
    args = ap.parse_args()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    if args.reference_only:
        first = json.loads(open(args.sft).readline())
        tok = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))
        model = Qwen2ForCausalLM.from_pretrained(args.out, attn_implementation="eager")
        write_reference(model, tok, first["segments"][0]["text"], args.test, args.out)
        return

    rows = [json.loads(l) for l in open(args.sft)]
    corpus = [json.loads(l) for l in open(args.corpus)]
    texts = ["".join(s["text"] for s in r["segments"]) for r in rows[:4000]]
    texts += ['"%s"\n%s' % (c["title"], c["text"]) for c in corpus]
    tok = train_tokenizer(texts, args.vocab)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(), f, indent=2)
        f.write("\n")
    vocab = tok.get_vocab_size()

    seqs = encode_rows(tok, rows, args.max_len)
    lens = [len(s[0]) for s in seqs]
    print(f"tokenizer: {vocab} tokens; {len(seqs)} trajectories, {np.mean(lens):.0f} tokens on average, max {max(lens)}", flush=True)

    cfg = Qwen2Config(vocab_size=vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads, max_position_embeddings=1024,
                      rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      bos_token_id=tok.token_to_id("<|endoftext|>"), eos_token_id=tok.token_to_id("<|im_end|>"),
                      pad_token_id=tok.token_to_id("<|endoftext|>"), attn_implementation="eager")
    model = Qwen2ForCausalLM(cfg)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model: {nparams} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    # Every trajectory starts with the same system message and instruction:
    # that prefix is computed once per batch and its cache shared.
    prefix = common_prefix([s[0] for s in seqs])
    seqs = [(x[len(prefix):], m[len(prefix):]) for x, m in seqs]
    print(f"shared prefix: {len(prefix)} tokens", flush=True)
    it = batches(seqs, args.batch, random.Random(args.seed), tok.token_to_id("<|endoftext|>"))
    log = open(os.path.join(args.out, "train-log.jsonl"), "w")
    t0 = time.time()
    model.train()
    last = args.stop_at if args.stop_at else args.steps
    for step in range(1, last + 1):
        ids, att, labels = next(it)
        loss = shared_prefix_loss(model, prefix, ids, att, labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        rec = {"step": step, "loss": round(loss.item(), 5), "lr": sched.get_last_lr()[0], "seconds": round(time.time() - t0, 1)}
        log.write(json.dumps(rec) + "\n")
        if step % 25 == 0 or step == 1:
            log.flush()
            print(json.dumps(rec), flush=True)
        if args.save_every and step % args.save_every == 0:
            model.save_pretrained(os.path.join(args.out, f"step-{step}"), safe_serialization=True)
    log.close()
    model.eval()
    model.save_pretrained(args.out, safe_serialization=True)

    write_reference(model, tok, rows[0]["segments"][0]["text"], args.test, args.out)
    print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
