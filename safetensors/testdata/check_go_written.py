"""Reads go_written.safetensors (made by `go test -run TestGoldenEncoding -update`)
with the Python safetensors package and checks every value, so that files
written by the Go writer are known to load in the reference implementation.
Run: python3 check_go_written.py
"""
import numpy as np
from safetensors import safe_open

with safe_open("go_written.safetensors", framework="np") as f:
    assert f.metadata() == {"rank": "2", "alpha": "16", "roles": "reason,tool"}, f.metadata()
    want = {
        "model.layers.0.self_attn.q_proj.lora_A.reason.weight": np.array([[1, -2], [3.5, 0], [1e-3, -7]], dtype=np.float32),
        "f64": np.array([0.1, -1e300], dtype=np.float64),
        "ids": np.array([[-1, 0], [1 << 40, 7]], dtype=np.int64),
        "flags": np.array([True, False, True]),
        "half": np.array([1, -2], dtype=np.float16),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    assert sorted(f.keys()) == sorted(want), f.keys()
    for name, w in want.items():
        got = f.get_tensor(name)
        assert got.dtype == w.dtype and got.shape == w.shape and np.array_equal(got, w), (name, got, w)
print("ok: all", len(want), "tensors match")
