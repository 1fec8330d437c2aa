"""Loads adapters written by `dartc export-peft` into Hugging Face PEFT and compares PEFT's logits with dartc's.

Run from the repository root after `go test ./peft/roundtrip -update`:

    models/export/.venv/bin/python peft/roundtrip/check_peft.py

The base model is rebuilt exactly as `models/export/export_qwen2.py --tiny-random --seed 0` builds it (its
builder is imported, not copied). For each role, testdata/peft-<role>/ is loaded with PeftModel.from_pretrained,
and the logits and next-token log-probs at every position of testdata/dartc_outputs.safetensors' input batch are
compared with dartc's (computed with every position in that role). testdata/result.json records the maximum
absolute differences, how far the adapter moves the logits from the base model (so a no-op load cannot pass), the
versions used and the sha256 of every input file. Exits 1 when a difference exceeds the tolerance.
"""

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import peft
import safetensors.torch
import torch
import transformers
from peft import PeftModel

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "models" / "export"))
from export_qwen2 import build_tiny_model  # noqa: E402

TESTDATA = HERE / "testdata"
ROLES = ["reason", "tool"]
TOLERANCE = 1e-4  # float32 logits of magnitude ~8, two different kernels


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_json_atomic(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main() -> int:
    torch.set_grad_enabled(False)
    dartc = safetensors.torch.load_file(str(TESTDATA / "dartc_outputs.safetensors"))
    input_ids = dartc["input_ids"]
    base_logits = build_tiny_model(0)(input_ids=input_ids).logits.float()
    inputs = ["adapters.safetensors", "dartc_outputs.safetensors"]
    result = {"tolerance": TOLERANCE, "roles": {}, "input_ids": input_ids.tolist(),
              "versions": {"peft": peft.__version__, "torch": torch.__version__,
                           "transformers": transformers.__version__, "python": sys.version.split()[0]},
              "made_by": "peft/roundtrip/check_peft.py"}
    passed = True
    for role in ROLES:
        adapter_dir = TESTDATA / f"peft-{role}"
        inputs += [f"peft-{role}/adapter_config.json", f"peft-{role}/adapter_model.safetensors"]
        model = PeftModel.from_pretrained(build_tiny_model(0), str(adapter_dir)).eval()
        loaded = sum(1 for n, _ in model.named_parameters() if "lora_" in n)
        logits = model(input_ids=input_ids).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
        want_logits, want_logprobs = dartc[f"logits.{role}"], dartc[f"logprobs.{role}"]
        entry = {
            "positions": int(input_ids.numel()),
            "lora_tensors_loaded": loaded,
            "logits_max_abs_diff": float((logits - want_logits).abs().max()),
            "logprobs_max_abs_diff": float((logprobs - want_logprobs).abs().max()),
            "adapter_effect_max_abs": float((logits - base_logits).abs().max()),
        }
        entry["passed"] = (entry["logits_max_abs_diff"] <= TOLERANCE and entry["logprobs_max_abs_diff"] <= TOLERANCE
                           and entry["adapter_effect_max_abs"] > 100 * TOLERANCE and loaded == 2 * 7 * 2)  # layers × targets × (A, B)
        passed = passed and entry["passed"]
        result["roles"][role] = entry
        print(f"{role}: max |Δlogit| {entry['logits_max_abs_diff']:.3g}, max |Δlogp| "
              f"{entry['logprobs_max_abs_diff']:.3g}, adapter effect {entry['adapter_effect_max_abs']:.3g}, "
              f"{loaded} LoRA tensors", file=sys.stderr)
    result["inputs_sha256"] = {name: sha256(TESTDATA / name) for name in inputs}
    result["passed"] = passed
    write_json_atomic(TESTDATA / "result.json", result)
    print("passed" if passed else "FAILED", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
