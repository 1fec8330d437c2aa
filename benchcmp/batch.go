package benchcmp

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Batch is the batch both sides run, flat [Batch·Seq] in row-major order,
// with the GRPO loss inputs of train.onnx (passes.GRPOHead).
type Batch struct {
	Rows          int       `json:"batch"`
	Seq           int       `json:"seq"`
	InputIDs      []int64   `json:"input_ids"`
	AttentionMask []int64   `json:"attention_mask"`
	PositionIDs   []int64   `json:"position_ids"`
	RoleIDs       []int64   `json:"role_ids"`
	TokenWeights  []float32 `json:"token_weights"`
	Advantages    []float32 `json:"advantages"`
	OldLogprobs   []float32 `json:"old_logprobs"`
	RefLogprobs   []float32 `json:"ref_logprobs"`
	ClipLow       float32   `json:"clip_low"`
	ClipHigh      float32   `json:"clip_high"`
	KLCoef        float32   `json:"kl_coef"`
	EntropyCoeff  float32   `json:"entropy_coeff"`
}

// RoleRun is the length of the alternating role runs of MakeBatch.
const RoleRun = 16

// MakeBatch makes a batch of rows × seq random token ids (no padding):
// every next-token position is weighted 1 (the last position of a row has
// no next token: 0), as a GRPO loss over completion tokens weights a batch
// of completions; one advantage per row, N(0, 1); old and reference
// log-probs at log(1/vocab), about what a freshly initialized model gives,
// so the ratio is near 1; roles alternate in runs of RoleRun tokens (for
// the dual LoRA; single-LoRA sides ignore them); clip 0.2/0.2, KL
// coefficient 0.05, entropy coefficient 0.
func MakeBatch(seed uint64, vocab int64, rows, seq int) (*Batch, error) {
	if vocab < 2 || rows < 1 || seq < 2 {
		return nil, fmt.Errorf("benchcmp: batch %d×%d over a vocabulary of %d: need ≥ 1 row, ≥ 2 tokens, ≥ 2 ids", rows, seq, vocab)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(rows)<<32|uint64(seq)))
	n := rows * seq
	b := &Batch{Rows: rows, Seq: seq, ClipLow: 0.2, ClipHigh: 0.2, KLCoef: 0.05}
	b.InputIDs, b.AttentionMask, b.PositionIDs, b.RoleIDs = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	b.TokenWeights, b.Advantages = make([]float32, n), make([]float32, n)
	b.OldLogprobs, b.RefLogprobs = make([]float32, n), make([]float32, n)
	lp0 := float32(-math.Log(float64(vocab)))
	for r := range rows {
		adv := float32(rng.NormFloat64())
		for t := range seq {
			i := r*seq + t
			b.InputIDs[i] = rng.Int64N(vocab)
			b.AttentionMask[i] = 1
			b.PositionIDs[i] = int64(t)
			b.RoleIDs[i] = int64(t/RoleRun) % 2
			if t < seq-1 {
				b.TokenWeights[i] = 1
			}
			b.Advantages[i] = adv
			b.OldLogprobs[i], b.RefLogprobs[i] = lp0, lp0
		}
	}
	return b, nil
}

// Validate checks the lengths and values a worker relies on.
func (b *Batch) Validate(vocab int64) error {
	n := b.Rows * b.Seq
	if b.Rows < 1 || b.Seq < 1 {
		return fmt.Errorf("benchcmp: batch %d×%d: need ≥ 1 row and ≥ 1 token", b.Rows, b.Seq)
	}
	for name, l := range map[string]int{"input_ids": len(b.InputIDs), "attention_mask": len(b.AttentionMask),
		"position_ids": len(b.PositionIDs), "role_ids": len(b.RoleIDs), "token_weights": len(b.TokenWeights),
		"advantages": len(b.Advantages), "old_logprobs": len(b.OldLogprobs), "ref_logprobs": len(b.RefLogprobs)} {
		if l != n {
			return fmt.Errorf("benchcmp: batch %d×%d: %s has %d values, want %d", b.Rows, b.Seq, name, l, n)
		}
	}
	for i, id := range b.InputIDs {
		if id < 0 || (vocab > 0 && id >= vocab) {
			return fmt.Errorf("benchcmp: batch: input_ids[%d] = %d is outside the vocabulary [0, %d)", i, id, vocab)
		}
	}
	return nil
}

// WeightedPositions is Σ token_weights.
func (b *Batch) WeightedPositions() float64 {
	s := 0.0
	for _, w := range b.TokenWeights {
		s += float64(w)
	}
	return s
}
