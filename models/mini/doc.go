// Package mini holds the tests of the mini world's model: a tiny Qwen2
// trained from scratch on Search-R1-format trajectories over invented
// facts (data/mini), small enough that GRPO visibly improves it on a CPU.
//
// Files:
//
//	worldgen/           the world's generator (Go; -seed), which also writes the
//	                    training trajectories with the agent's own prompt,
//	                    observation format and BM25 index
//	train_mini.py       tokenizer (HF tokenizers, byte-level BPE) and model
//	                    (transformers Qwen2ForCausalLM) training, seeded
//	tokenizer_reference.py  Hugging Face encodings the tokenizer test compares with
//	regen.sh            the whole regeneration in a pinned venv (make mini-model)
//	summary/, experiment/  tabulate the demo's and the experiment's evaluations
//	model/              the committed result: model.onnx (export_qwen2.py),
//	                    config.json, model.safetensors, tokenizer.json,
//	                    tokenizer_config.json, train-log.jsonl and the
//	                    PyTorch references the tests read
//
// The tests check that dartc's tokenizer encodes as Hugging Face's does on
// this tokenizer, that the router finds the query tokens with it, that the
// compiled decode.onnx reproduces PyTorch's logits, and that GRPO with
// DART raises the held-out reward of the compiled model.
package mini
