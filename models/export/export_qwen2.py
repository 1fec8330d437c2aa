#!/usr/bin/env python3
"""Export a Hugging Face Qwen2 / Qwen2.5 checkpoint to ONNX with a KV cache, for dartc.

Two exporters are supported:

  torchscript  torch.onnx.export(..., dynamo=False), the way optimum exports decoder models. Linear layers
               become MatMul nodes named after the module path (/model/layers.0/self_attn/q_proj/MatMul)
               reading a pre-transposed, anonymous initializer.
  dynamo       torch.onnx.export(..., dynamo=True). Initializers keep their parameter names
               (model.layers.0.self_attn.q_proj.weight) and nodes carry pkg.torch.onnx.* metadata.

Graph inputs and outputs are the same for both (names and dtypes; see README.md):
  input_ids i64[batch, seq], attention_mask i64[batch, past+seq], position_ids i64[batch, seq],
  past_key_values.{i}.key / .value f32[batch, kv_heads, past, head_dim]
  -> logits f32[batch, seq, vocab], present.{i}.key / .value f32[batch, kv_heads, past+seq, head_dim]

Every export is checked with onnxruntime against PyTorch (a left-padded prefill and one cached decode step)
before the output files are put in place; the command fails if they disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM

# The torchtune tiny BPE tokenizer (tiny_bpe_vocab.json: 2,000 regular tokens, ids 0..1999) plus its
# three specials <|endoftext|>=2000, <|im_start|>=2001, <|im_end|>=2002.
TINY_VOCAB_SIZE = 2003
TINY_ENDOFTEXT_ID = 2000
TINY_IM_END_ID = 2002

DEFAULT_OPSET = 18  # optimum-onnx's DEFAULT_ONNX_OPSET; also the dynamo exporter's base opset
EXTERNAL_DATA_NAME = "model.onnx.data"

# Dimension names written into the graphs' inputs and outputs (both exporters).
DIM_BATCH = "batch_size"
DIM_SEQ = "sequence_length"
DIM_PAST = "past_sequence_length"
DIM_TOTAL = "total_sequence_length"


def tiny_config() -> Qwen2Config:
    """Returns the Qwen2.5-architecture config of the --tiny-random model."""
    return Qwen2Config(
        vocab_size=TINY_VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_act="silu",
        max_position_embeddings=256,
        initializer_range=0.02,
        rms_norm_eps=1e-6,
        use_cache=True,
        tie_word_embeddings=True,
        rope_theta=1e6,
        use_sliding_window=False,
        sliding_window=None,
        max_window_layers=2,
        attention_dropout=0.0,
        bos_token_id=TINY_ENDOFTEXT_ID,
        eos_token_id=TINY_IM_END_ID,
        pad_token_id=TINY_ENDOFTEXT_ID,
        dtype="float32",
        architectures=["Qwen2ForCausalLM"],
    )


def build_tiny_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> Qwen2ForCausalLM:
    """Builds the --tiny-random model with weights drawn from a generator seeded with seed.

    The weights are re-drawn here rather than left to transformers' initializer, so that they do not depend
    on its init order, and at scales that make the logits far from uniform: linear weights N(0, 1/in),
    biases N(0, 0.1²), embeddings N(0, 0.25²) (tied to the head: logits of std ~2), norm weights 1 + N(0, 0.1²). Parameters are visited in name order.
    """
    config = tiny_config()
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("embed_tokens.weight"):
                value = 0.25 * torch.randn(param.shape, generator=gen)
            elif name.endswith("norm.weight"):
                value = 1.0 + 0.1 * torch.randn(param.shape, generator=gen)
            elif name.endswith(".bias"):
                value = 0.1 * torch.randn(param.shape, generator=gen)
            elif param.dim() == 2:
                value = torch.randn(param.shape, generator=gen) / param.shape[1] ** 0.5
            else:
                raise ValueError(f"export: no init rule for parameter {name} {tuple(param.shape)}")
            param.copy_(value)
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise RuntimeError("export: tiny model lm_head is not tied to embed_tokens")
    return model.to(dtype).eval()


def load_checkpoint(path: Path) -> Qwen2ForCausalLM:
    """Loads a HF Qwen2/Qwen2.5 checkpoint directory in float32 with eager attention."""
    if not (path / "config.json").is_file():
        raise SystemExit(f"export: {path} has no config.json; pass a Hugging Face checkpoint directory")
    config = Qwen2Config.from_pretrained(path)
    if config.model_type != "qwen2":
        raise SystemExit(f"export: {path}/config.json has model_type {config.model_type!r}; only 'qwen2' "
                         "(Qwen2 and Qwen2.5) is supported")
    model = Qwen2ForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    return model.eval()


class FlatKVModel(torch.nn.Module):
    """Runs a Qwen2ForCausalLM with flat tensor inputs and outputs, the graph signature dartc expects.

    It holds the causal LM's own `model` and `lm_head` submodules (not the causal LM itself), so the module
    paths, and with them the exported node and initializer names, are the checkpoint's: model.layers.0...,
    /model/layers.0/self_attn/q_proj/MatMul.
    """

    def __init__(self, causal_lm: Qwen2ForCausalLM):
        super().__init__()
        self.model = causal_lm.model
        self.lm_head = causal_lm.lm_head
        self.config = causal_lm.config
        self.num_layers = causal_lm.config.num_hidden_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache(config=self.config)
        for i in range(self.num_layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True, return_dict=True)
        logits = self.lm_head(out.last_hidden_state)
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (logits, *present)


def io_names(num_layers: int) -> tuple[list[str], list[str]]:
    inputs = ["input_ids", "attention_mask", "position_ids"]
    outputs = ["logits"]
    for i in range(num_layers):
        inputs += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outputs += [f"present.{i}.key", f"present.{i}.value"]
    return inputs, outputs


def kv_shape(config, batch: int, length: int) -> tuple[int, int, int, int]:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return (batch, config.num_key_value_heads, length, head_dim)


def position_ids_for(attention_mask: torch.Tensor) -> torch.Tensor:
    """HF's rule for left padding: cumsum(mask) - 1, with pad positions set to 1."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 1)


def sample_inputs(config, batch: int, seq: int, past: int, seed: int = 1):
    """Random export/verification inputs: row 0 unpadded, the others left padded by one token."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, config.vocab_size, (batch, seq), generator=gen)
    mask = torch.ones(batch, past + seq, dtype=torch.long)
    if batch > 1:
        mask[1:, 0] = 0
    position_ids = position_ids_for(mask)[:, past:]
    pkv = [torch.randn(kv_shape(config, batch, past), generator=gen) for _ in range(2 * config.num_hidden_layers)]
    return (input_ids, mask, position_ids, *pkv)


def export_torchscript(wrapper: FlatKVModel, path: Path, opset: int, optimize: bool = True) -> None:
    config = wrapper.config
    inputs, outputs = io_names(config.num_hidden_layers)
    dynamic_axes = {
        "input_ids": {0: DIM_BATCH, 1: DIM_SEQ},
        "attention_mask": {0: DIM_BATCH, 1: DIM_TOTAL},
        "position_ids": {0: DIM_BATCH, 1: DIM_SEQ},
        "logits": {0: DIM_BATCH, 1: DIM_SEQ},
    }
    for name in inputs[3:]:
        dynamic_axes[name] = {0: DIM_BATCH, 2: DIM_PAST}
    for name in outputs[1:]:
        dynamic_axes[name] = {0: DIM_BATCH, 2: DIM_TOTAL}
    args = sample_inputs(config, batch=2, seq=3, past=2)
    with torch.no_grad():
        torch.onnx.export(wrapper, args, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=optimize)


def export_dynamo(wrapper: FlatKVModel, path: Path, opset: int, optimize: bool = True) -> None:
    config = wrapper.config
    inputs, outputs = io_names(config.num_hidden_layers)
    batch = torch.export.Dim(DIM_BATCH, min=1, max=1024)
    seq = torch.export.Dim(DIM_SEQ, min=1, max=config.max_position_embeddings)
    past = torch.export.Dim(DIM_PAST, min=0, max=config.max_position_embeddings)
    total = torch.export.Dim(DIM_TOTAL, min=1, max=2 * config.max_position_embeddings)
    kv = {0: batch, 2: past}
    dynamic_shapes = {
        "input_ids": {0: batch, 1: seq},
        "attention_mask": {0: batch, 1: total},
        "position_ids": {0: batch, 1: seq},
        "past": tuple(kv for _ in inputs[3:]),
    }
    args = sample_inputs(config, batch=2, seq=3, past=2)
    with torch.no_grad():
        program = torch.onnx.export(wrapper, args, dynamo=True, input_names=inputs, output_names=outputs,
                                    dynamic_shapes=dynamic_shapes, opset_version=opset, optimize=optimize)
    # raw export: weights always outside, so that graphs over protobuf's 2 GiB limit can be loaded and edited
    program.save(str(path), external_data=True)
    tidy_dynamo_graph(path)


def tidy_dynamo_graph(path: Path) -> None:
    """Names the dynamo graph's total-length dim as the TorchScript graph does, and makes the source paths
    in its pkg.torch.onnx.stack_trace metadata relative (to site-packages or to this folder), so that the
    file does not depend on where the checkout or the venv is."""
    model = onnx.load(str(path), load_external_data=False)  # the data file stays where it is
    total = {f"{DIM_PAST} + {DIM_SEQ}", f"{DIM_SEQ} + {DIM_PAST}"}
    for value in list(model.graph.input) + list(model.graph.output):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in total:
                dim.dim_param = DIM_TOTAL
    prefixes = [str(Path(torch.__file__).resolve().parent.parent) + os.sep,
                str(Path(__file__).resolve().parent) + os.sep]
    for node in model.graph.node:
        for prop in node.metadata_props:
            for prefix in prefixes:
                prop.value = prop.value.replace(prefix, "")
    onnx.save_model(model, str(path))


def initializer_bytes(model: onnx.ModelProto) -> int:
    total = 0
    for init in model.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        total += n * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
    return total


def write_model(model: onnx.ModelProto, out_dir: Path, external: bool) -> None:
    """Writes model.onnx (+ model.onnx.data) into out_dir, which must be a fresh directory."""
    path = out_dir / "model.onnx"
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=EXTERNAL_DATA_NAME, size_threshold=1024, convert_attribute=False)
    else:
        onnx.save_model(model, str(path))
    for name in os.listdir(out_dir):
        os.chmod(out_dir / name, 0o644)
        with open(out_dir / name, "rb") as f:
            os.fsync(f.fileno())


def run_ort(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def verify(wrapper: FlatKVModel, path: Path) -> dict[str, float]:
    """Compares ORT and PyTorch on a left-padded prefill (empty cache), a cached two-token step, and other
    batch sizes and lengths than the ones the graph was traced with.

    Returns the largest absolute difference of the logits and caches over non-pad positions per check, and
    raises if any is above 1e-4 (the tiny model's logits are O(1)).
    """
    config = wrapper.config
    inputs, outputs = io_names(config.num_hidden_layers)
    result = {}
    cases = {"prefill": (2, 5, 0), "decode": (2, 2, 4), "single token": (1, 1, 0), "batch 3 step": (3, 1, 6)}
    for label, (batch, seq, past) in cases.items():
        args = sample_inputs(config, batch, seq, past, seed=7)
        with torch.no_grad():
            want = [t.numpy() for t in wrapper(*args)]
        got = run_ort(path, {n: a.numpy() for n, a in zip(inputs, args)})
        valid = args[1][:, past:].numpy().astype(bool)  # query positions holding real tokens
        worst = 0.0
        for name, w in zip(outputs, want):
            g = got[name]
            if g.shape != w.shape:
                raise RuntimeError(f"export: verify {label}: {name} has shape {g.shape}, PyTorch {w.shape}")
            if name == "logits":
                diff = np.abs(g - w)[valid]
            else:
                diff = np.abs(g - w)
            worst = max(worst, float(diff.max()))
        result[label] = worst
        if worst > 1e-4:
            raise RuntimeError(f"export: verify {label}: ORT and PyTorch differ by {worst:g} (> 1e-4) in {path}")
    return result


def export(model: Qwen2ForCausalLM, exporter: str, out_dir: Path, external_data: str, threshold_mb: float,
           opset: int, config_out: Path | None, check: bool = True, optimize: bool = True) -> dict:
    """Exports model into out_dir/model.onnx (+ .data), verifies it, and returns a summary dict."""
    wrapper = FlatKVModel(model).eval()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.raw-") as raw_dir:
        raw = Path(raw_dir) / "model.onnx"
        if exporter == "torchscript":
            export_torchscript(wrapper, raw, opset, optimize)
        elif exporter == "dynamo":
            export_dynamo(wrapper, raw, opset, optimize)
        else:
            raise SystemExit(f"export: unknown exporter {exporter!r}; use torchscript or dynamo")
        model_proto = onnx.load(str(raw))
    size = initializer_bytes(model_proto)
    if external_data == "always":
        external = True
    elif external_data == "never":
        external = False
        if size > 1.9 * 2**30:
            raise SystemExit(f"export: weights are {size / 2**30:.1f} GiB, over protobuf's 2 GiB limit; "
                             "use --external-data auto or always")
    else:
        external = size > threshold_mb * 2**20
    stage = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        write_model(model_proto, stage, external)
        del model_proto
        onnx.checker.check_model(str(stage / "model.onnx"))  # by path: works past 2 GiB
        diffs = verify(wrapper, stage / "model.onnx") if check else {}
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("model.onnx", EXTERNAL_DATA_NAME):
            if (out_dir / stale).exists() and not (stage / stale).exists():
                (out_dir / stale).unlink()
        # data file first, so model.onnx never names a data file that is not there yet
        for name in sorted(os.listdir(stage), key=lambda n: n == "model.onnx"):
            os.replace(stage / name, out_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if config_out is not None:
        write_json_atomic(config_out, model.config.to_dict())
    return {"exporter": exporter, "output": str(out_dir), "external_data": external, "weight_bytes": size,
            "opset": opset, "verify_max_abs_diff": diffs}


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="Hugging Face Qwen2/Qwen2.5 checkpoint directory")
    src.add_argument("--tiny-random", action="store_true",
                     help="a random 2-layer Qwen2.5-architecture model (vocab of the torchtune tiny BPE)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --tiny-random weights (default 0)")
    p.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript",
                   help="torchscript: torch.onnx.export(dynamo=False), as optimum does (default); "
                        "dynamo: torch.onnx.export(dynamo=True)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory for model.onnx")
    p.add_argument("--external-data", choices=["auto", "always", "never"], default="auto",
                   help=f"store weights in {EXTERNAL_DATA_NAME} next to model.onnx (auto: when the weights "
                        "exceed --external-data-threshold-mb)")
    p.add_argument("--external-data-threshold-mb", type=float, default=1024.0)
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--config-out", type=Path, default=None,
                   help="where to write the model's HF config.json (default: OUTPUT/config.json)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-PyTorch check")
    p.add_argument("--no-optimize", action="store_true",
                   help="export without the exporter's graph optimizations: TorchScript without constant folding "
                        "(do_constant_folding=False), dynamo without its optimizer (optimize=False)")
    args = p.parse_args(argv)

    torch.set_grad_enabled(False)
    torch.set_num_threads(1)  # one thread: the same float sums, so the same bytes, on every machine
    model = build_tiny_model(args.seed) if args.tiny_random else load_checkpoint(args.checkpoint)
    summary = export(model, args.exporter, args.output, args.external_data, args.external_data_threshold_mb,
                     args.opset, args.config_out or args.output / "config.json", check=not args.no_verify,
                     optimize=not args.no_optimize)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
