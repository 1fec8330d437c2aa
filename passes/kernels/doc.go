// Package kernels holds, as data, which element types ONNX Runtime's
// execution providers have kernels for, op by op: the CUDA provider's table
// (from ONNX Runtime's generated kernel list) and the CPU provider's
// (measured). The precision pass reads them to decide where a graph can run
// in float16 or bfloat16, and tests check emitted graphs against them.
// PROVENANCE.md says where each table comes from.
package kernels
