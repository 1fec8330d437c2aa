// Package gradcheck verifies a compiled model's train.onnx gradients
// against central differences of its own loss, run forward only.
//
// It draws random inputs (a batch of token sequences with left padding,
// mixed roles, positive token weights, advantages of both signs, old and
// reference log-probs near the current ones so that the clipped ratio stays
// smooth) and random non-zero adapters, then for each adapter tensor
// compares the directional derivative along random unit directions,
// (L(θ + h·u) − L(θ − h·u)) / 2h, with ⟨∇L, u⟩ from train.onnx.
//
// The check is meaningful in float64: compile a float64 export for it.
// float32 graphs are checked with a looser default tolerance.
package gradcheck
