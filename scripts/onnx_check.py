#!/usr/bin/env python3
"""Checks compiled graphs with the ONNX reference checker (full_check: also
shape inference). scripts/onnx-check.sh runs it over the graphs of every
exporter form (it pins and installs onnx); by hand, with a Python that has
`onnx`: scripts/onnx_check.py DIR[=SOURCE.onnx] ... Compile with
--copy-weights first: onnx refuses hard-linked external data files.

With =SOURCE, the source model is checked first; when the checker refuses
the source itself (an export in ONNX Runtime's contrib ops, say), the
compiled graphs cannot pass either and are reported, not counted."""
import glob
import os
import sys

import onnx


def check(path):
    try:
        onnx.checker.check_model(path, full_check=True)
        return None
    except Exception as e:  # the checker raises several types
        return str(e).splitlines()[0]


failed = checked = 0
for arg in sys.argv[1:] or ["demo-out/compiled"]:
    d, _, source = arg.partition("=")
    if source:
        err = check(source)
        if err:
            print("src ", source, "refused by the checker itself:", err)
            print("     so", d, "is not counted")
            continue
    paths = sorted(glob.glob(os.path.join(d, "*.onnx")))
    if not paths:
        failed += 1
        print("FAIL", d, "holds no .onnx file")
    for path in paths:
        checked += 1
        err = check(path)
        if err:
            failed += 1
            print("FAIL", path, err)
        else:
            print("ok  ", path)
print(f"onnx.checker {onnx.__version__} (full_check): {checked - failed} of {checked} graphs pass")
sys.exit(1 if failed else 0)
