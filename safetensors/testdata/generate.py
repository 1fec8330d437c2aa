"""Writes python_reference.safetensors with the Python safetensors package.

Run once in a throwaway environment (pip install safetensors numpy) from this
directory: python3 generate.py. The Go test reads the file and compares it with
the values written out below, so it checks the Go reader against an independent
writer. The F16/BF16 tensors come with their float32 values as numpy computes
them (the "*_as_f32" tensors), an independent reference for the conversions.
"""
import numpy as np
from safetensors.numpy import save_file

f16 = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 6.1035156e-05, 5.9604645e-08, np.inf, 0.333251953125], dtype=np.float16)
# numpy has no bfloat16: truncate float32 values to their top 16 bits (bf16's
# layout) and keep, as the reference, the float32 those bits stand for.
bf16_source = np.array([1.0, -3.140625, 1.0e30, -0.0078125], dtype=np.float32)
bf16_bits = (bf16_source.view(np.uint32) >> 16).astype(np.uint16)
bf16_as_f32 = (bf16_bits.astype(np.uint32) << 16).view(np.float32)

tensors = {
    "f64": np.array([[1.5, -2.25, 3.0], [0.1, 1e300, -1e-300]], dtype=np.float64),
    "f32": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8 - 1,
    "f16": f16,
    "f16_as_f32": f16.astype(np.float32),
    "bf16_bits": bf16_bits,
    "bf16_as_f32": bf16_as_f32,
    "i64": np.array([-(2**62), -1, 0, 1, 2**62], dtype=np.int64),
    "i32": np.array([[-7, 8], [2**31 - 1, -(2**31)]], dtype=np.int32),
    "i16": np.array([-32768, 32767], dtype=np.int16),
    "i8": np.array([-128, 127, 0], dtype=np.int8),
    "u8": np.array([0, 255], dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "scalar": np.array(42.0, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float32),
}
save_file(tensors, "python_reference.safetensors", metadata={"format": "np", "note": "made by generate.py"})
