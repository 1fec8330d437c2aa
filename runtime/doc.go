// Package runtime runs dartc's compiled graphs on ONNX Runtime.
//
// It owns finding the ONNX Runtime shared library, creating sessions on the
// CPU or CUDA execution providers, and the generation loop over decode.onnx.
//
// Library discovery, in order: the ONNXRUNTIME_SHARED_LIBRARY_PATH
// environment variable; then the project cache .cache/ort/<version>/ that
// `make` fills from the npm package onnxruntime-node, looked up from the
// working directory and from the executable's directory upwards.
//
// The ONNX Runtime environment is process-wide: Init is idempotent and safe
// for concurrent use; it is never torn down while the process lives.
package runtime
