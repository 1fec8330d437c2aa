// Package leasrun drives a LEAS evaluation (`dartc leas`, DESIGN.md §8) on a
// compiled dual-adapter model: for each of the six configurations it puts
// the adapter tensors leas.Assemble builds into the agent, rolls every
// question out k times, counts the rollouts whose answer is an exact match,
// and hands the counts to package leas for smoothing, the exact λ solve,
// the summary and the histogram.
//
// Output directory layout:
//
//	settings.json    what made the rows, and the command (run.CheckSettings)
//	rollouts.jsonl   one line per (configuration, question, sample): answer, EM, stop
//	questions.jsonl  per question the counts c_M of the six configurations (leas.Question)
//	results.jsonl    per question smoothed accuracies, λ, λ_23, interference (leas.Result)
//	summary.json     leas.Summary plus the run's settings
//	lambda23.png     histogram of λ_23 split by M_Unified's success
//
// The trained models are checkpoints of `dartc train --variant single`
// with --grad-tokens reason (M_Reas), tool (M_Tool) and all (M_Unified):
// each one adapter shared by every token. Run refuses a file whose
// metadata records another variant or filter, or none, and one whose two
// slots differ, naming the command that makes the right file.
//
// Invariants:
//   - Every configuration runs the same compiled graph; only the adapter
//     tensors change (M_Base: zeros in both slots; M_Reas, M_Tool,
//     M_Unified: the trained file; H_Tool, H_Reas: one trained slot, the
//     other zeros).
//   - Configurations share random numbers: row r of every configuration
//     draws from runtime.RowRNG(seed+batch, r), so differences between
//     configurations come from the adapters, not the draws (common random
//     numbers lower the variance of the λ estimates).
//   - rollouts.jsonl grows by one synced batch of one configuration at a
//     time, so a stopped run resumes per batch (a batch's draws depend only
//     on the seed and its position); settings.json records what made the
//     rows and every row carries its id, so other settings are refused.
//   - Run writes only into a new or empty directory or one leas wrote
//     (CheckOutput), and checks alpha before any rollout.
//     The other outputs are written atomically once all rollouts are done.
package leasrun
