// Package trajectory is the record of one agent rollout: the contract
// between the agent loop that produces it and the trainer and evaluators
// that consume it.
//
// Alignment: every per-position slice has len(Tokens) entries, and entry t
// describes the prediction made AT position t of the token at t+1 — the
// same alignment as the logprobs output of logprobs.onnx and train.onnx.
// The last entry describes no prediction and is always zero.
package trajectory
