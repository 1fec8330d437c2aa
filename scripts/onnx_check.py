#!/usr/bin/env python3
"""Checks compiled graphs with the ONNX reference checker (full_check: also
shape inference). Run by hand with a Python that has `onnx` (for example
models/export/.venv): scripts/onnx_check.py DIR [DIR ...]. Compile with
--copy-weights first: onnx refuses hard-linked external data files."""
import glob
import os
import sys

import onnx

failed = 0
for d in sys.argv[1:] or ["demo-out/compiled"]:
    for path in sorted(glob.glob(os.path.join(d, "*.onnx"))):
        try:
            onnx.checker.check_model(path, full_check=True)
            print("ok  ", path)
        except Exception as e:  # the checker raises several types
            failed += 1
            print("FAIL", path, str(e).splitlines()[0])
sys.exit(1 if failed else 0)
