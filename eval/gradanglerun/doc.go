// Package gradanglerun drives the gradient-angle analysis (`dartc
// gradangle`, DESIGN.md §8): rollouts of a model with one shared adapter,
// then for each rollout the gradient of its reasoning tokens and the
// gradient of its tool tokens through train.onnx, and the angles between
// them (package gradangle).
//
// The shared adapter: the reason-slot tensors of the given file are put
// in every slot for the rollouts (so the router's roles change nothing),
// and train.onnx runs with every position in role 0, so all gradient lands
// on the reason slot, which is what is measured.
//
// The measured objective. train.onnx computes
// L = Σ_t w_t·(pg_t + β·kl_t), pg_t = −min(r_t·A_t, clip(r_t, 1−ε, 1+ε)·A_t),
// r_t = exp(logp_t − old_t). Here A_t = 1, old_t = ref_t = the log-prob the
// sampler recorded for the token (the same policy, so r_t = 1 up to float
// rounding and the clip is inactive), β = 0, and w_t = 1 exactly on the
// positions that predict a policy token of one kind (reasoning: role 0;
// tool: role 1 — the router's roles of the rollout), 0 elsewhere. So the
// gradient measured for a kind is
//
//	g_kind = −Σ_{t of that kind} ∇_θ log π_θ(a_t | s_t)
//
// the negative REINFORCE gradient of that kind's tokens with unit
// advantage: the direction in which a positive reward on those tokens would
// move the shared adapter. The common sign leaves every angle unchanged.
// The run records max |r_t − 1| to show the ratio really is 1.
//
// Output directory: samples.jsonl (per rollout: token counts, gradient
// norms), angles.json (the three angle lists), summary.json, angles.png,
// all written atomically at the end. While running, each finished batch's
// gradients go to partial/batch-N.safetensors and its rows to
// partial/samples.jsonl (synced), so a run stopped by an error or a signal
// resumes per batch; settings.json records what made them, and resuming
// with other settings is refused. Run writes only into a new or empty
// directory or one gradangle wrote (CheckOutput); once the report is
// written it deletes the files it put in partial/, and partial/ itself
// only if nothing else is left there.
package gradanglerun
