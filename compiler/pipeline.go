package compiler

import (
	"fmt"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
)

// pass is one step of a pipeline.
type pass struct {
	name string
	fn   func(*passes.State) error
}

// The passes, by name. A pipeline lists names in run order.
var passTable = map[string]pass{
	"match-targets":     {"match-targets", passes.MatchTargets},
	"dual-lora":         {"dual-lora", passes.DualLoRA},
	"dual-lora-stacked": {"dual-lora-stacked", passes.DualLoRAStacked},
	"merge-lora-inputs": {"merge-lora-inputs", passes.MergeLoRAInputs},
	"last-token-logits": {"last-token-logits", passes.LastTokenLogits},
	"dead-code":         {"dead-code", passes.DeadCode},
	"drop-cache":        {"drop-cache", passes.DropCache},
	"logprob-head":      {"logprob-head", passes.LogprobHead},
	"grpo-head":         {"grpo-head", passes.GRPOHead},
	"autodiff":          {"autodiff", passes.Autodiff},
	"expand-functions":  {"expand-functions", passes.ExpandFunctions},
	"greedy-outputs":    {"greedy-outputs", passes.GreedyOutputs},
	"sample-outputs":    {"sample-outputs", passes.SampleOutputs},
	"cse":               {"cse", passes.EliminateCommonSubexpressions},
	"widen":             {"widen", passes.Widen},
	"fold-constants":    {"fold-constants", passes.FoldConstants},
	"precision":         {"precision", passes.Precision},
	"annotate-shapes":   {"annotate-shapes", passes.AnnotateShapes},
	"block-attention":   {"block-attention", passes.BlockCausalAttention},
	"drop-noop-casts":   {"drop-noop-casts", passes.DropNoopCasts},
	"tie-embedding":     {"tie-embedding", passes.TieEmbedding},
	"frozen-gemm":       {"frozen-gemm", passes.FrozenLinearsAsGemm},
	"slices-to-split":   {"slices-to-split", passes.SlicesToSplit},
	"rotate-half":       {"rotate-half", passes.RotateHalfAsSwap},
}

// passOrder lists constraints: the first pass must run before the second
// whenever both are in a pipeline.
var passOrder = [...]struct{ before, after, why string }{
	{"widen", "match-targets", "every pass sees the float64 model (--precision fp64)"},
	{"widen", "tie-embedding", "the tied lm_head is widened with the embedding"},
	{"match-targets", "dual-lora", "the rewrite adapts the matched targets"},
	{"dual-lora", "dead-code", "the rewrite leaves the replaced outputs to collect"},
	{"last-token-logits", "dead-code", "the slice leaves the full-sequence head input to collect"},
	{"last-token-logits", "greedy-outputs", "the reductions read the last position's logits"},
	{"greedy-outputs", "sample-outputs", "the sampler reuses the greedy logits, max and log-sum-exp"},
	{"dual-lora", "grpo-head", "the head's type follows the adapters"},
	{"dual-lora", "logprob-head", "the head's type follows the adapters"},
	{"match-targets", "dual-lora-stacked", "the rewrite adapts the matched targets"},
	{"dual-lora-stacked", "dead-code", "the rewrite leaves the replaced outputs to collect"},
	{"dual-lora-stacked", "grpo-head", "the head's type follows the adapters"},
	{"dual-lora-stacked", "logprob-head", "the head's type follows the adapters"},
	{"drop-cache", "grpo-head", "the loss reads the full-sequence logits"},
	{"drop-cache", "logprob-head", "the head reads the full-sequence logits"},
	{"grpo-head", "autodiff", "the head seeds the gradient"},
	{"drop-cache", "block-attention", "queries and keys have one length once the cache is gone"},
	{"expand-functions", "block-attention", "the blocks split the expanded attention"},
	{"block-attention", "autodiff", "the backward differentiates the blocks"},
	{"fold-constants", "slices-to-split", "the Slices' bounds are constants once folded"},
	{"slices-to-split", "autodiff", "a Split's gradient is one Concat, the Slices' a Pad each and a Sum"},
	{"slices-to-split", "rotate-half", "rotate_half's halves are one Split once the Slices are merged"},
	{"rotate-half", "autodiff", "the backward differentiates the swap, one Slice, not the Split and Concat"},
	{"drop-noop-casts", "block-attention", "the blocks copy the Casts between the softmax and its matmul"},
	{"drop-noop-casts", "autodiff", "a dropped Cast needs no gradient"},
	{"expand-functions", "drop-noop-casts", "the expanded functions' Casts are dropped too"},
	{"expand-functions", "autodiff", "the autodiff differentiates the function bodies, not the fused ops"},
	{"autodiff", "dead-code", "the forward outputs the loss does not read are collected after differentiation"},
	{"fold-constants", "autodiff", "the rules read Slice and reduction axes as constants"},
	{"drop-cache", "fold-constants", "the emptied cache makes more shape arithmetic constant"},
	{"autodiff", "cse", "the gradient rules repeat Shape, Transpose and constant sub-graphs that CSE merges"},
	{"autodiff", "precision", "the backward pass is retyped with the forward"},
	{"sample-outputs", "precision", "the sampler stays float32 downstream of the logits"},
	{"logprob-head", "precision", "the head stays float32 downstream of the logits"},
	{"precision", "dead-code", "constants converted to the low type leave their float32 originals to collect"},
	{"dead-code", "annotate-shapes", "the value types describe the final graph"},
	{"cse", "annotate-shapes", "the value types describe the final graph"},
	{"precision", "annotate-shapes", "the value types describe the final graph"},
	{"tie-embedding", "dead-code", "the rewrite leaves the embedding table to collect"},
	{"tie-embedding", "precision", "the precision pass finds the vocabulary from the embedding Gather"},
	{"dual-lora", "frozen-gemm", "the rewrite adapts the linears in the source's form"},
	{"dual-lora-stacked", "frozen-gemm", "the rewrite adapts the linears in the source's form"},
	{"dual-lora-stacked", "merge-lora-inputs", "the merge rewires the stacked branches"},
	{"merge-lora-inputs", "frozen-gemm", "the merge groups the targets by the inputs the source gives them"},
	{"merge-lora-inputs", "autodiff", "the backward differentiates the merged branches"},
	{"frozen-gemm", "autodiff", "the backward differentiates the Gemms"},
	{"frozen-gemm", "precision", "the weights are converted where the Gemms read them"},
	{"frozen-gemm", "dead-code", "the Transposes the Gemms no longer read are collected"},
}

// pipelines maps each emitted graph to its passes in run order.
var pipelines = map[string][]string{
	"decode":   {"widen", "match-targets", "dual-lora", "frozen-gemm", "last-token-logits", "greedy-outputs", "sample-outputs", "cse", "precision", "dead-code", "annotate-shapes"},
	"logprobs": {"widen", "tie-embedding", "expand-functions", "match-targets", "dual-lora-stacked", "merge-lora-inputs", "frozen-gemm", "drop-cache", "fold-constants", "slices-to-split", "rotate-half", "drop-noop-casts", "block-attention", "logprob-head", "cse", "precision", "dead-code", "annotate-shapes"},
	"train":    {"widen", "tie-embedding", "expand-functions", "match-targets", "dual-lora-stacked", "merge-lora-inputs", "frozen-gemm", "drop-cache", "fold-constants", "slices-to-split", "rotate-half", "drop-noop-casts", "block-attention", "grpo-head", "autodiff", "cse", "precision", "dead-code", "annotate-shapes"},
}

func init() {
	for name, pl := range pipelines {
		if err := checkPipeline(pl); err != nil {
			panic(fmt.Sprintf("compiler: pipeline %s: %v", name, err))
		}
	}
}

// checkPipeline verifies that every pass exists and that passOrder holds.
func checkPipeline(pl []string) error {
	pos := map[string]int{}
	for i, p := range pl {
		if _, ok := passTable[p]; !ok {
			return fmt.Errorf("unknown pass %q", p)
		}
		pos[p] = i
	}
	for _, c := range passOrder {
		a, okA := pos[c.before]
		b, okB := pos[c.after]
		if okA && okB && a > b {
			return fmt.Errorf("%s must run before %s: %s", c.before, c.after, c.why)
		}
	}
	return nil
}

// runPipeline runs the named pipeline on s, checking the graph after each
// pass when check is set.
func runPipeline(name string, s *passes.State, check bool) error {
	for _, p := range pipelines[name] {
		if err := passTable[p].fn(s); err != nil {
			return err
		}
		if check {
			if err := ir.Check(s.Model.Graph); err != nil {
				return fmt.Errorf("compiler: after pass %s of %s: %w", p, name, err)
			}
		}
	}
	return nil
}
