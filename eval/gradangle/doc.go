// Package gradangle measures how the gradients of reasoning tokens and of
// tool-use tokens point relative to each other when one adapter is shared
// (DESIGN.md §8): for each rollout, the gradient of the loss restricted to
// its reasoning tokens and the one restricted to its tool tokens, each
// flattened over all adapter tensors; then the angles reason–tool (within a
// sample), reason–reason and tool–tool (across pairs of samples).
//
// Invariants:
//   - Angles are computed in float64 with the form
//     2·atan2(‖â − b̂‖, ‖â + b̂‖) (â, b̂ unit vectors), which is accurate
//     near 0° and 180° where acos of a cosine is not: the same vector twice
//     gives exactly 0°.
//   - A zero or non-finite gradient has no direction: pairs involving it are
//     skipped and counted, never reported as 90° or NaN.
//   - Flatten orders tensors by name, so two gradients of the same model
//     line up element for element.
package gradangle
