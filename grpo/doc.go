// Package grpo trains a compiled dual-LoRA model with GRPO: rollouts from a
// Roller, rewards, group advantages, reference log-probs from logprobs.onnx
// with the adapters off, mini-batches of micro-batches through train.onnx
// with gradients summed in Go, one adamw.onnx update per mini-batch,
// checkpoints and per-step metrics.
//
// A step (Trainer.Step):
//
//  1. Prompts examples from the data cursor (a seeded permutation per
//     epoch), each rolled out Group times by the Roller with the current
//     adapters and a seed derived from (Seed, step).
//  2. Rewards (EMReward by default) and advantages (r − mean)/(std + 1e-6)
//     per group, unbiased std; a group of one gets 0.
//  3. Reference log-probs: logprobs.onnx with every adapter zero (the frozen
//     base), skipped when kl_coef is 0. Old log-probs are the sampling
//     ones recorded in the trajectories (recomputed with logprobs.onnx when
//     recompute_old_logprobs is set, and always for two-agent).
//  4. For each mini-batch: token weights (TokenWeights), train.onnx per
//     micro-batch, gradients summed, then adamw.onnx once, unless the loss
//     or a gradient is NaN/Inf: then the update is skipped and logged, and
//     max_nonfinite skipped updates in a row stop the run (ErrNonFinite).
//
// Variants, all from the same graphs: dual feeds each position its
// trajectory role; single feeds role 0 everywhere and keeps every other
// role's slot a copy of role 0's, so the policy the agent loop samples
// from is the single LoRA whatever roles it assigns; two-agent runs one
// train.onnx pass per role with every position encoded by that role's
// adapter and the loss on that role's positions only (each agent's own
// context encoding), with old log-probs recomputed that way.
// Isolation: by default one train.onnx pass per micro-batch gives every
// adapter the gradient of the whole loss; with mixed roles a token's loss
// reaches, through attention, the adapters of earlier positions of the
// other role. IsolationStrict runs one pass per role with the other roles'
// token weights zeroed and keeps only that role's adapter gradients, so
// each adapter gets only its own role's token losses (twice the train
// time with two roles); two-agent is strict by construction.
//
// GradTokens (reason, tool) zeroes the token weights of the other role's
// positions; with single it makes LEAS's M_Reas and M_Tool (one shared
// adapter, loss on one role's tokens). Checkpoints record variant and
// grad_tokens in the adapters' metadata (MetaVariant, MetaGradTokens).
//
// Settings start from a preset: DefaultConfig (a 2-core CPU with the demo
// model) or SearchR1Config (Search-R1's scale). EstimateStep predicts a
// step's peak memory and compute from the manifest; Trainer.Calibrate
// measures the forward rate that turns FLOPs into seconds.
//
// Invariants:
//   - Token weights carry the mask and the aggregation: Σ w·ℓ over a
//     mini-batch's micro-batches is its loss, so gradients are plain sums.
//   - The first mini-batch of a step trains the adapters the rollouts were
//     sampled with: its ratio is 1 up to float error (metric
//     ratio_max_dev_first).
//   - Every random choice is keyed by (Seed, step) or (Seed, epoch), so a
//     checkpoint's counters (State) restore the RNGs exactly: training 2N
//     steps equals N, stop, resume, N.
//   - A checkpoint is a directory built under a temporary name and renamed
//     into place; the newest step-N directory is always complete. Nothing
//     is written after an error other than a cancelled context.
//   - The trainer owns the adapter tensors; a Roller must not modify them.
package grpo
