package grpo

import "math"

// AdvantageEps is added to the group's standard deviation (Search-R1, veRL).
const AdvantageEps = 1e-6

// GroupAdvantages returns (r − mean)/(std + 1e-6) within each consecutive
// group of `group` rewards, with the unbiased (n − 1) standard deviation
// as torch.std computes it. A group of one has advantage 0 (veRL sets its
// mean to 0 and std to 1; with one sample its reward is then the
// advantage — dartc gives 0 instead so that a lone rollout teaches nothing,
// since it has no baseline).
func GroupAdvantages(rewards []float64, group int) []float64 {
	adv := make([]float64, len(rewards))
	if group < 2 {
		return adv
	}
	for g := 0; g+group <= len(rewards); g += group {
		rs := rewards[g : g+group]
		mean := 0.0
		for _, r := range rs {
			mean += r
		}
		mean /= float64(group)
		ss := 0.0
		for _, r := range rs {
			ss += (r - mean) * (r - mean)
		}
		std := math.Sqrt(ss / float64(group-1))
		for i, r := range rs {
			adv[g+i] = (r - mean) / (std + AdvantageEps)
		}
	}
	return adv
}
