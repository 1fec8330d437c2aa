// Package ortc is dartc's own cgo layer over ONNX Runtime's C API, for what
// github.com/yalue/onnxruntime_go v1.27 does not expose: memory info for
// CUDA and the CPU, allocators, tensors allocated by ONNX Runtime on the
// execution device, IoBinding with device-bound inputs and outputs and its
// synchronisation, per-node profiling, session log levels and the list of
// available execution providers.
//
// It complements onnxruntime_go rather than replacing it: onnxruntime_go
// keeps loading the library, creating the process-wide environment and
// reading graph metadata, and the host-tensor sessions that the rest of
// dartc uses stay on it. This package opens the same shared library (dlopen
// returns the already loaded copy), obtains the same environment (ONNX
// Runtime's OrtEnv is a process-wide singleton), and creates its own
// sessions, whose inputs and outputs are bound to tensors that ONNX Runtime
// owns. A full replacement would have meant rewriting the metadata,
// session-option and tensor code that works today, for no gain on the path
// that needs device memory.
//
// The C API's declarations are written here (ortc.h, ortc.c) rather than
// taken from onnxruntime_c_api.h, which neither the npm package
// onnxruntime-node nor PyPI's onnxruntime-gpu wheel ships. The C API is a
// table of function pointers whose entries are only ever appended; ortc.c
// names the position of each entry it calls, checked against the header of
// C API version 24. The layer asks the library for API version 24, which
// ONNX Runtime 1.24 and later provide.
//
// Invariants:
//
//   - Every function returns an error carrying ONNX Runtime's message; no
//     OrtStatus escapes.
//   - Handles are released exactly once by their Release method; releasing
//     twice is a no-op. Values must be released before the allocator that
//     made them, allocators before their session.
//   - Copies between Go memory and a tensor go through Copy, which the
//     caller (package runtime) counts: that is where bytes cross between Go
//     and ONNX Runtime.
package ortc
