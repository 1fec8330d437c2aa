package grpo

import (
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// maxLen is the longest trajectory of a micro-batch: its padded length.
func maxLen(batch []*trajectory.Trajectory) int {
	n := 0
	for _, t := range batch {
		n = max(n, len(t.Tokens))
	}
	return n
}

// LengthBucket is the multiple micro-batches are padded to: train.onnx and
// logprobs.onnx see a few distinct lengths instead of one per batch, so
// ONNX Runtime's arena reuses its blocks instead of growing for each new
// length (BenchmarkMemoryVaryingLengths).
const LengthBucket = 64

// padLen is the padded length of a micro-batch: its longest sequence
// rounded up to LengthBucket, within the model's context when known.
func (tr *Trainer) padLen(batch []*trajectory.Trajectory) int {
	n := maxLen(batch)
	S := (n + LengthBucket - 1) / LengthBucket * LengthBucket
	if m := int(tr.man.Model.MaxLength); m > 0 && S > m {
		S = max(n, m)
	}
	return S
}

// packSeqs lays out a micro-batch right-padded to padLen: input_ids (0 on
// padding), attention_mask, position_ids (0… on tokens, 1 on padding as
// Hugging Face sets them) and role_ids from roles. Right padding leaves
// every real position's inputs as in an unpadded forward: causal attention
// never looks right, and padding is masked (the heads compute nothing
// there).
func (tr *Trainer) packSeqs(batch []*trajectory.Trajectory, roles func(*trajectory.Trajectory, int) int64) map[string]*runtime.Tensor {
	B, S := len(batch), tr.padLen(batch)
	ids := runtime.NewTensor(runtime.Int64, int64(B), int64(S))
	mask := runtime.NewTensor(runtime.Int64, int64(B), int64(S))
	pos := runtime.NewTensor(runtime.Int64, int64(B), int64(S))
	role := runtime.NewTensor(runtime.Int64, int64(B), int64(S))
	iv, mv, pv, rv := ids.Int64(), mask.Int64(), pos.Int64(), role.Int64()
	for i, tj := range batch {
		for t := range S {
			k := i*S + t
			if t < len(tj.Tokens) {
				iv[k], mv[k], pv[k], rv[k] = tj.Tokens[t], 1, int64(t), roles(tj, t)
			} else {
				pv[k] = 1
			}
		}
	}
	return map[string]*runtime.Tensor{
		"input_ids": ids, "attention_mask": mask, "position_ids": pos, tr.man.LoRA.RoleInput: role,
	}
}

// packFloats right-pads per-sequence values with zeros into [B, S].
func packFloats(dt runtime.DType, rows [][]float64, S int) *runtime.Tensor {
	flat := make([]float64, len(rows)*S)
	for i, r := range rows {
		copy(flat[i*S:], r)
	}
	return floatTensor(dt, []int64{int64(len(rows)), int64(S)}, flat)
}

// pad returns rows sized to their trajectories (nil rows become zeros).
func pad(rows [][]float64, batch []*trajectory.Trajectory) [][]float64 {
	out := make([][]float64, len(batch))
	for i, tj := range batch {
		out[i] = make([]float64, len(tj.Tokens))
		copy(out[i], rows[i])
	}
	return out
}

// broadcast puts each rollout's advantage on all its positions.
func broadcast(batch []*trajectory.Trajectory, adv []float64) [][]float64 {
	out := make([][]float64, len(batch))
	for i, tj := range batch {
		out[i] = make([]float64, len(tj.Tokens))
		for t := range out[i] {
			out[i][t] = adv[i]
		}
	}
	return out
}

func allZero(w [][]float64) bool {
	for _, r := range w {
		for _, v := range r {
			if v != 0 {
				return false
			}
		}
	}
	return true
}

func countMask(w [][]float64) int {
	n := 0
	for _, r := range w {
		for _, v := range r {
			if v != 0 {
				n++
			}
		}
	}
	return n
}
