#!/usr/bin/env python3
"""The PyTorch worker of `benchcmp` (make bench-compare): one JSON request per line on stdin, one JSON
answer per line on stdout (the protocol of benchcmp/protocol.go), log lines on stderr.

Requests ("op"): load {checkpoint, lora: peft|plain|dual, rank, alpha, targets, threads, attn},
prepare {graph} (nothing to do here), batch {name, batch, seq, input_ids, …: the driver's batch}, train {name}, logprobs {name, values},
reset_peak, quit. Every answer has ok (and error when not ok); train and logprobs answer the step's
seconds (time.perf_counter around the step alone), the process's RSS and peak RSS (VmHWM) in KiB.
"""
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import lorastep  # noqa: E402


class Worker:
    def __init__(self):
        self.model, self.batches, self.info = None, {}, {}

    def load(self, r):
        lorastep.set_threads(int(r.get("threads", 0)))
        torch.set_num_interop_threads(1)
        torch.manual_seed(int(r.get("seed", 0)))
        model = lorastep.build_model(checkpoint=r["checkpoint"], attn=r.get("attn", "sdpa"))
        model, name = lorastep.add_lora(model, r.get("lora", "peft"), int(r.get("rank", 16)), float(r.get("alpha", 32)),
                                        r.get("targets") or None)
        model.train()  # dropout is 0 in Qwen2 and in the LoRA config: train mode changes nothing else
        self.model = model
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        import transformers

        self.info = {"side": "pytorch", "lora": name, "torch": torch.__version__, "transformers": transformers.__version__,
                     "threads": torch.get_num_threads(), "attn": r.get("attn", "sdpa"), "params": total,
                     "trainable": trainable}
        return dict(self.info, rss_kib=lorastep.rss_kib())

    def batch(self, r):
        self.batches[r["name"]] = lorastep.batch_tensors(r)
        return {}

    def _get(self, r):
        if self.model is None:
            raise RuntimeError("no model: send load first")
        b = self.batches.get(r.get("name"))
        if b is None:
            raise RuntimeError(f"no batch named {r.get('name')!r}: send batch first")
        return b

    def train(self, r):
        b = self._get(r)
        t0 = time.perf_counter()
        loss = lorastep.train_step(self.model, b)
        dt = time.perf_counter() - t0
        out = {"seconds": dt, "loss": loss}
        if r.get("grad_norm"):
            sq = sum(float((p.grad.double() ** 2).sum()) for p in self.model.parameters() if p.grad is not None)
            out["grad_norm"] = sq ** 0.5
        return out

    def logprobs(self, r):
        b = self._get(r)
        t0 = time.perf_counter()
        lp = lorastep.logprobs(self.model, b)
        dt = time.perf_counter() - t0
        out = {"seconds": dt}
        if r.get("values"):
            out["logprobs"] = lp.flatten().tolist()
        return out

    def prepare(self, r):  # the model serves both phases: nothing to open
        if r.get("graph") not in ("train", "logprobs"):
            raise RuntimeError(f"prepare: graph {r.get('graph')!r}: want train or logprobs")
        return {}

    def reset_peak(self, r):
        lorastep.reset_peak_rss()
        return {}


def main():
    w = Worker()
    ops = {"load": w.load, "batch": w.batch, "train": w.train, "logprobs": w.logprobs, "prepare": w.prepare, "reset_peak": w.reset_peak}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            op = r.get("op")
            if op == "quit":
                print(json.dumps({"ok": True}), flush=True)
                return 0
            if op not in ops:
                raise RuntimeError(f"unknown op {op!r}")
            out = ops[op](r)
            out.update(ok=True, rss_kib=lorastep.rss_kib(), peak_rss_kib=lorastep.rss_kib("VmHWM"))
        except Exception as e:  # the driver reports it and stops
            traceback.print_exc(file=sys.stderr)
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
