// Package safetensors reads and writes the safetensors tensor file format.
//
// A file is an 8-byte little-endian unsigned header length N, then N bytes
// of a JSON object, then the tensor data. The JSON object maps each tensor
// name to {"dtype", "shape", "data_offsets": [begin, end]} and may hold a
// "__metadata__" object of string to string. Offsets are relative to the
// first byte after the header. The writer pads the header with spaces to a
// multiple of 8 bytes so that the data section starts aligned.
//
// Invariants enforced by Read (a file that breaks one is an error, never a
// panic):
//   - the header length fits in the file and is at most MaxHeaderSize;
//   - the header is one JSON object with no duplicate or unknown keys;
//   - every dtype is one of the DType constants and every dimension is >= 0;
//   - end-begin equals the element count times the dtype size;
//   - the tensors' byte ranges, sorted by begin, tile the data section exactly:
//     no gap, no overlap, nothing after the last tensor.
//
// File.Tensors lists tensors in data order (by begin offset), which for
// files made by Write is the order the tensors were given. Tensor.Data of a
// File returned by Read aliases the buffer that holds the whole file.
//
// Write checks the same invariants before writing, and writes atomically:
// a temporary file in the destination directory, fsync, rename.
package safetensors
