package grpo

import (
	"fmt"

	"github.com/dartc/dartc/trajectory"
)

// Role ids of the default dual adapter layout (manifest roles reason, tool).
const (
	RoleReason = 0
	RoleTool   = 1
)

// keep reports whether position t of tr carries loss under the filter:
// the position predicts a sampled token and its role passes gradTokens.
func keep(tr *trajectory.Trajectory, t int, gradTokens string) bool {
	if !tr.Policy[t] {
		return false
	}
	switch gradTokens {
	case GradReason:
		return tr.Roles[t] == RoleReason
	case GradTool:
		return tr.Roles[t] == RoleTool
	}
	return true
}

// TokenWeights returns w[i][t], the loss weight of position t of rollout i
// of one mini-batch: zero where the position is masked (prompt, observation,
// last position) or filtered out by gradTokens, and elsewhere
//
//	token-mean:          1 / (kept positions in the whole mini-batch)
//	seq-mean-token-mean: 1 / (n · kept positions of rollout i), n = rollouts
//	                     with at least one kept position
//
// so that Σ w·ℓ is the aggregated loss whatever the mode, and the sum over
// micro-batches of their losses is the mini-batch's loss.
func TokenWeights(batch []*trajectory.Trajectory, mode, gradTokens string) ([][]float64, error) {
	w := make([][]float64, len(batch))
	counts := make([]int, len(batch))
	total, seqs := 0, 0
	for i, tr := range batch {
		w[i] = make([]float64, len(tr.Tokens))
		for t := range tr.Tokens {
			if keep(tr, t, gradTokens) {
				counts[i]++
			}
		}
		total += counts[i]
		if counts[i] > 0 {
			seqs++
		}
	}
	if total == 0 {
		return w, nil
	}
	for i, tr := range batch {
		if counts[i] == 0 {
			continue
		}
		var v float64
		switch mode {
		case AggTokenMean:
			v = 1 / float64(total)
		case AggSeqMeanTokenMean:
			v = 1 / (float64(seqs) * float64(counts[i]))
		default:
			return nil, fmt.Errorf("grpo: loss aggregation %q: choose token-mean or seq-mean-token-mean", mode)
		}
		for t := range tr.Tokens {
			if keep(tr, t, gradTokens) {
				w[i][t] = v
			}
		}
	}
	return w, nil
}
