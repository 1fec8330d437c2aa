// Package qwen2 describes the Qwen2 / Qwen2.5 model family as dartc needs it:
// the architecture hyper-parameters (Config) with presets holding the values of
// the published Hugging Face checkpoints, the target linear modules that dual
// LoRA rewrites (q, k, v, o, gate, up, down) with their module paths, and the
// Search-R1 tag strings that the token router looks for.
//
// Invariants:
//   - A Config that passes Validate has Heads divisible by KVHeads, an even
//     HeadDim, and every size positive; presets always pass it.
//   - ModulePath and ParseModulePath are inverses for every layer ≥ 0 and every
//     TargetKind; ParseModulePath accepts the bare module path and the same
//     path followed by ".weight" or ".bias", and nothing else.
//   - Preset returns a copy; changing it never changes the table.
//
// Graph building lives in the sub-package synth, and an independent
// float64 forward pass in qwen2ref.
package qwen2
