// Package synth writes Qwen2-shaped ONNX decoders of any size in the op
// pattern of real exports, for tests, demos and benchmarks that must not
// depend on downloaded checkpoints.
//
// The default (TorchScript) form follows torch.onnx.export(dynamo=False) of
// transformers' Qwen2ForCausalLM as optimum runs it, checked against such an
// export: Gather embedding; RMSNorm as Cast, Pow(·,2), ReduceMean(-1), Add(eps),
// Sqrt, Div(1,·), Mul, Cast, Mul(γ); q/k/v MatMul with pre-transposed
// anonymous initializers onnx::MatMul_N [in, out] and bias Add; rotary
// cos/sin computed from position_ids (Unsqueeze, Cast, Mul inv_freq, Concat,
// Cos/Sin); rotate_half by Slice/Neg/Concat; GQA by Unsqueeze/Expand/Reshape;
// MatMul(q, Transpose(k))·(1/√d) + additive mask, Softmax, MatMul v;
// SiLU as x·Sigmoid(x); final norm; /lm_head/MatMul. Node names are the
// exporter's (/model/layers.0/self_attn/q_proj/MatMul, /lm_head/MatMul), and
// a tied lm_head is a separate transposed copy of the embedding, as the
// exporter's constant folding leaves it. Shape computations are simplified to
// constant Reshape targets with 0 (copy) and -1 (infer) entries, and the
// norm's Casts go to the model's dtype (transformers casts to float32 even in
// a float64 model; here a float64 graph stays float64 throughout).
//
// The Dynamo form follows torch.onnx.export(dynamo=True, optimize=False):
// parameters keep their names ([out, in]) and are read through
// Transpose(perm=[1,0]); nodes are node_<Op>_<n> with outputs val_<n>, the
// node finishing a linear is node_linear[_k] with output linear[_k], small
// constants are val_<n> initializers, and every node carries
// pkg.torch.onnx.name_scopes, a Python list literal of cumulative module
// paths ending in the fx node name, e.g.
//
//	['', 'model', 'model.layers.0', 'model.layers.0.self_attn', 'model.layers.0.self_attn.q_proj', 'linear']
//
// (With its default
// optimize=True, torch 2.x folds the transposes into anonymous val_<n>
// initializers instead.) The Gemm form flattens x to 2-D and calls
// Gemm(x, W[out,in], b, transB=1), then restores the leading dims.
//
// Invariants:
//   - Opset 17, IR version 8; nodes in topological order; every output name
//     is unique; inputs are input_ids, attention_mask, position_ids (int64)
//     and, with KVCache, past_key_values.{i}.key/.value [batch, kv_heads,
//     past, head_dim]; outputs are logits [batch, seq, vocab] and, with
//     KVCache, present.{i}.key/.value (Concat of past and new on axis 2).
//   - Masked attention scores get the dtype's lowest finite value, so fully
//     masked (left-padding) rows give a uniform softmax, never NaN.
//   - Result.Weights holds exactly the values stored in the graph (rounded to
//     the dtype), keyed by Hugging Face names with linear weights [out, in].
//   - External data lives in model.onnx.data next to model.onnx, referenced
//     by that relative name, every tensor at a 4096-aligned offset; tensors
//     under 1024 elements stay inline. Zero weights are never written: the
//     data file is one hole, so big presets cost neither disk nor time.
//   - The output directory is built under a temporary name in the same parent
//     and renamed into place: it either appears complete or not at all.
//
// Float64 graphs need two ORT 1.30 CPU fusions turned off
// (session config optimization.disable_specified_optimizers =
// "QuickGeluFusion;SimplifiedLayerNormFusion"): the first loads a float-only
// kernel, the second silently computes the norm at lower precision.
package synth
