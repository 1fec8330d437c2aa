// Package agent runs the Search-R1 rollout loop over a compiled model and
// returns each rollout as a trajectory.Trajectory (DESIGN.md §4, §6).
//
// One Run extends a batch of rows (questions × group size) turn by turn:
// every live row generates until "</search>", "</answer>", an EOS token or
// the per-turn token limit; the turn is cut as Search-R1 cuts it; its action
// is parsed; the searches of all rows go to the Searcher in one call and the
// observations "\n\n<information>…</information>\n\n" (or Search-R1's
// invalid-action message) are appended; after MaxTurns such turns a final
// turn runs without search. Rows that finish wait for the others.
//
// Invariants:
//
//   - The text the model sees is Search-R1's byte for byte: the ChatML
//     prompt with Search-R1's user message, the observation and invalid-action
//     strings of models/prompt, observations truncated to MaxObsTokens
//     tokens as Search-R1 truncates them.
//   - Every token is either sampled by the policy (Policy, with its
//     log-prob under the sampling policy at temperature 1, untruncated) or
//     inserted by the environment (prompt, observations, and the re-encoded
//     tail of a token that ran past a stop string): inserted tokens have
//     Policy false and log-prob 0.
//   - Roles come from one router.Router per row, fed token by token as
//     the tokens enter the context; the role fed to decode.onnx at a position
//     is the role recorded in the trajectory, and it equals router.Roles
//     recomputed on the finished sequence with the same generated flags.
//   - A row's random numbers come from runtime.RowRNG(seed, row) and
//     continue across its turns, and the turn's token limit and the context
//     end each row by itself (GenerateConfig.MaxLength), so a rollout does
//     not depend on which other rows are still generating.
//   - A row's KV cache is carried from turn to turn: a turn's prefill feeds
//     only the tokens added since the last one (the observation, and the
//     previous turn's last token), and the rollout equals one that re-runs
//     the prefill of the whole context (Config.Reprefill).
//   - The adapters and the KV cache stay on the execution device (a
//     resident decoder): adapters are uploaded once per SetAdapters or lent
//     by UseResidentAdapters, and the rows' caches live there between turns
//     and are freed when Run returns. Config.HostTensors feeds them as Go
//     tensors at every step instead, the bit-identical reference.
//
// Deviations from Search-R1, all at token level: Search-R1 decodes a turn,
// cuts the text and re-tokenizes it; here the sampled tokens are kept (so
// their log-probs stay exact) and only a token that carries bytes past the
// stop string is replaced by the encoding of its bytes up to the stop. An EOS
// token that ends a turn stays in the context (Search-R1 drops it when it
// re-tokenizes); it is left out of the response text, as
// skip_special_tokens does.
package agent
