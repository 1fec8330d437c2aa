// Package qwen2ref is a plain float64 forward pass of the Qwen2 decoder, written
// as straightforward loops over the Hugging Face formulas and sharing no code
// with the graph synthesizer, so that synthesized or exported graphs can be
// checked against it.
//
// Conventions (the same as the exported ONNX graphs):
//   - Weights are keyed by Hugging Face parameter names, linear weights in
//     PyTorch orientation [out, in], row-major: model.embed_tokens.weight,
//     model.layers.N.self_attn.q_proj.weight / .bias, …, model.norm.weight and,
//     for untied models, lm_head.weight (a tied model may omit it).
//   - Inputs are [batch][seq] int64; attention_mask covers past and new
//     positions ([batch][past+seq]); a key position j is visible from query i
//     when j ≤ past+i and attention_mask[b][j] ≠ 0. Masked scores get the
//     additive MaskValue (default: the lowest finite float64; use
//     -math.MaxFloat32 to mirror a float32 graph), so a fully masked row
//     becomes a uniform distribution, never NaN, as in Hugging Face.
//   - Logits are returned flat as [batch, seq, vocab]; caches hold per layer
//     the rotated keys and the values, each flat [batch, kv_heads, past, head_dim].
//
// The reference is slow on purpose (no blocking, no parallelism): it is a test
// oracle for models with at most a few million parameters.
package qwen2ref
