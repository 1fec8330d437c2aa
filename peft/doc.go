// Package peft converts dartc's dual adapter file into Hugging Face PEFT
// LoRA adapters, one directory per role, for serving with PEFT or vLLM.
//
// dartc's adapters.safetensors holds, for every target module M and role R,
// M.lora_A.R.weight of shape [in, r] and M.lora_B.R.weight of shape [r, out]
// (ONNX MatMul orientation: y = x·W + s·(x·A)·B), with metadata "rank",
// "alpha", "roles" (comma separated) and "base_model". PEFT stores
// base_model.model.M.lora_A.weight as [r, in] and …lora_B.weight as
// [out, r] (torch Linear orientation: delta W = B·A·alpha/r), so export
// transposes both.
//
// Invariants checked before anything is written:
//   - every module of the exported role has both A and B, A is [in, r],
//     B is [r, out], and r equals the metadata rank;
//   - the role is one of the metadata roles, rank and alpha parse;
//   - transposition keeps the dtype and moves whole elements, so values are
//     bit-identical after export.
//
// Export writes the directory atomically: a temporary sibling directory is
// filled, synced and renamed; an existing non-empty output is refused.
package peft
