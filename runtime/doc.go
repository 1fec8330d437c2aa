// Package runtime runs dartc's compiled graphs on ONNX Runtime.
//
// It owns finding the ONNX Runtime shared library, creating sessions on the
// CPU or CUDA execution providers, host tensors, and batched generation with
// the KV cache over decoder graphs.
//
// Library discovery, in order: the ONNXRUNTIME_SHARED_LIBRARY_PATH
// environment variable; for the cuda device (InitFor), the CUDA build that
// `make ort-gpu` installs in .cache/ort-gpu/<version>/; then the project
// cache .cache/ort/<version>/ that `make ort` fills from the npm package
// onnxruntime-node. Both caches are looked up from the working directory
// and from the executable's directory upwards; nothing else is searched.
//
// Invariants:
//
//   - The ONNX Runtime environment is process-wide: Init is idempotent and
//     safe for concurrent use; it is never torn down while the process lives.
//   - A Tensor lives in Go memory, 8-byte aligned, in C order. ONNX Runtime
//     values that wrap it exist only for the duration of one Session.Run and
//     are released before Run returns, so Tensors need no Destroy.
//   - A Session checks every input against the graph's declared dtype and
//     dims before ONNX Runtime sees it; symbolic dims must agree across inputs
//     (every input named "batch" has the same size). Output buffers
//     (RunInto, BoundSession) must name outputs of the session. Session.Destroy
//     releases the ONNX Runtime session; a Session is not safe for concurrent
//     Run calls.
//   - A compiled graph is opened with the session settings its manifest
//     records (ForGraph; NewDecoderFromManifest too): its config entries win
//     over the caller's, so a float64 graph keeps its disabled fusions.
//   - onnxruntime_go v1.27.0 cannot auto-allocate float16/bfloat16 outputs,
//     so such outputs are always pre-allocated, with their shape resolved from
//     the symbolic dims that the inputs bind.
//   - Device-resident state goes through dartc's own C API layer
//     (runtime/internal/ortc): a Device (the CPU or one CUDA device), tensors
//     ONNX Runtime allocates there (DeviceTensor), and BoundSession, which
//     runs a graph through IoBinding with device tensors as inputs and
//     outputs written in place. The same code runs on the CPU with the CPU
//     allocator. Bytes crossing between Go and ONNX Runtime — host inputs
//     and outputs, uploads, downloads — are counted (TransferStats); copies
//     between device tensors are not crossings. On CUDA the layer is written
//     but has not yet run on a GPU.
//   - A resident decoder (DecoderSpec.Resident; the agent's default) runs
//     decode.onnx as a BoundSession: adapters uploaded once
//     (Decoder.UploadInputs, GenerateConfig.Resident) are bound in place,
//     each step's presents are allocated on the device and fed as the next
//     step's past, and RowCaches carried across calls hold device tensors,
//     laid out and gathered by device copies. Per step only ids, mask,
//     positions, roles, the sampler's feed and the drawn tokens and
//     log-probs cross to Go (the logits too where Go draws). Its results
//     are bit-identical to the host-tensor decoder's on the CPU.
//   - Diagnostics (Options.Diagnostics or DARTC_ORT_LOG, DARTC_ORT_PROFILE,
//     DARTC_ORT_STRICT) set a session's ONNX Runtime log level, its per-node
//     profile and strict placement (no CPU fallback).
//   - Generation uses the Hugging Face KV-cache convention: left padding,
//     attention mask 0 on padding, position ids = cumsum(mask) − 1 (1 on
//     padding), caches shaped [batch, kv_heads, length, head_dim]. Each row
//     stops by itself at the context (the model's, or the call's lower
//     GenerateConfig.MaxLength), whatever the other rows do. A row's
//     cache can be carried from one Generate call to the next
//     (GenerateConfig.Cache, kvcache.go): its tokens are not fed again, and
//     the columns between the carried and the new tokens are masked like
//     padding. The log-prob stored for each sampled token is the policy's:
//     log_softmax of the raw logits at temperature 1, untruncated.
//   - Sampled tokens are drawn inside decode.onnx where it has the sampler
//     (passes.SampleOutputs), with uniform numbers from each row's seeded
//     stream, so no logits leave ONNX Runtime; otherwise, and with Force or
//     KeepLastLogits, Sampler draws them in Go (Filter's distribution,
//     without sorting or allocating). Logits that are not finite (NaN, or
//     +Inf, from a diverged model) make generation fail, greedy or sampled,
//     naming the rows: they have no distribution to draw from.
package runtime
