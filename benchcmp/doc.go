// Package benchcmp measures dartc's compiled graphs against PyTorch eager
// on the same weights and the same batch (make bench-compare): the train
// step (forward, GRPO loss, backward to the LoRA adapters; train.onnx vs
// PyTorch + PEFT), the forward-only log-probs (logprobs.onnx vs PyTorch
// under no_grad) and the peak resident memory of each.
//
// Each side runs in its own worker process speaking one protocol
// (protocol.go: a JSON request per line on stdin, a JSON answer per line on
// stdout): the dartc worker is this package's Serve (ONNX Runtime through
// package runtime, in `benchcmp worker`), the PyTorch worker is
// benchcmp/torch/worker.py. The driver (Compare) sends both the same batch
// and alternates their steps (A B A B …), so both see the same machine
// state; each worker times its own step and reads its own peak RSS
// (VmHWM), reset after loading and before each phase, so the figures hold
// nothing of the other side, of the driver or of earlier phases. Every
// phase starts fresh worker processes.
//
// Before timing, the driver checks that the two sides compute the same
// model: the first step's loss, or log-probs, must agree (both sides start
// from LoRA B = 0, so the adapters add nothing yet).
package benchcmp
