// Command dartc compiles exported Qwen2 ONNX graphs into dual-LoRA decode,
// log-prob, training and optimizer graphs, and trains them with GRPO against
// a search engine. Run `dartc help` for the commands.
package main
