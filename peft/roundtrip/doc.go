// Package roundtrip holds the check that an adapter written by
// `dartc export-peft` means in Hugging Face PEFT what it means in dartc
// (issue 8, must-show 4). It has no library code: its test and the Python
// script check_peft.py share the files in testdata/.
//
// The round trip, run by hand when the fixtures change (not by make test):
//
//  1. go test ./peft/roundtrip -update writes testdata/adapters.safetensors
//     (dual adapters: the reason and tool tensors of the tiny Qwen2.5
//     fixture's reference), exports each role with peft.Export to
//     testdata/peft-<role>/, and writes testdata/dartc_outputs.safetensors:
//     for each role, the logits of decode.onnx at every position (one
//     prefill per prefix) and the next-token log-probs of logprobs.onnx,
//     with every position in that role.
//  2. models/export/.venv/bin/python peft/roundtrip/check_peft.py rebuilds
//     the tiny model exactly as models/export/export_qwen2.py --tiny-random
//     --seed 0 does, loads each peft-<role>/ with PeftModel.from_pretrained,
//     and writes testdata/result.json: PEFT's logits and log-probs against
//     dartc's (max abs diff), the sha256 of every input, pass or fail.
//
// Invariants the Go test keeps on every run: result.json says passed and
// names the sha256 of the committed inputs; peft.Export writes today
// exactly the committed peft-<role>/ files (keys, shapes, safetensors
// layout, bytes); the compiled model gives today the committed dartc
// outputs.
package roundtrip
