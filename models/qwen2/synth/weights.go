package synth

import (
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/dartc/dartc/models/qwen2"
)

// Param is one model parameter, named as in Hugging Face, with its PyTorch
// shape ([out, in] for linear weights).
type Param struct {
	Name  string
	Shape []int
}

// Params lists cfg's parameters in the checkpoint's order. A tied model has
// no lm_head.weight.
func Params(cfg qwen2.Config) []Param {
	ps := []Param{{"model.embed_tokens.weight", []int{cfg.Vocab, cfg.Hidden}}}
	for l := 0; l < cfg.Layers; l++ {
		p := "model.layers." + strconv.Itoa(l) + "."
		ps = append(ps, Param{p + "input_layernorm.weight", []int{cfg.Hidden}})
		for _, k := range qwen2.TargetKinds() {
			out, in := cfg.LinearShape(k)
			ps = append(ps, Param{qwen2.ModulePath(l, k) + ".weight", []int{out, in}})
			if cfg.HasBias(k) {
				ps = append(ps, Param{qwen2.ModulePath(l, k) + ".bias", []int{out}})
			}
			if k == qwen2.TargetO {
				ps = append(ps, Param{p + "post_attention_layernorm.weight", []int{cfg.Hidden}})
			}
		}
	}
	ps = append(ps, Param{"model.norm.weight", []int{cfg.Hidden}})
	if !cfg.TiedEmbed {
		ps = append(ps, Param{"lm_head.weight", []int{cfg.Vocab, cfg.Hidden}})
	}
	return ps
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// DrawWeights returns the weights Synthesize stores for cfg, seed and dtype
// (the same values as Result.Weights), without writing a model.
func DrawWeights(cfg qwen2.Config, seed uint64, dtype DType) map[string][]float64 {
	return drawWeights(cfg, seed, dtype)
}

// drawWeights draws every parameter from a PCG stream seeded by seed, in
// Params order, and rounds to dtype so that the values returned are exactly
// the values stored. Scales keep activations O(1) at any width:
// linear weights N(0, 1/in), embeddings N(0, 1/hidden) (so tied logits stay
// O(1)), norm weights 1 + N(0, 0.1²), biases N(0, 0.1²).
func drawWeights(cfg qwen2.Config, seed uint64, dtype DType) map[string][]float64 {
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	w := make(map[string][]float64)
	for _, p := range Params(cfg) {
		v := make([]float64, numel(p.Shape))
		var mean, std float64
		switch {
		case len(p.Shape) == 2 && (p.Name == "model.embed_tokens.weight" || p.Name == "lm_head.weight"):
			std = 1 / math.Sqrt(float64(cfg.Hidden))
		case len(p.Shape) == 2:
			std = 1 / math.Sqrt(float64(p.Shape[1]))
		case len(p.Name) > len(".bias") && p.Name[len(p.Name)-len(".bias"):] == ".bias":
			std = 0.1
		default: // norm weights
			mean, std = 1, 0.1
		}
		for i := range v {
			x := mean + std*rng.NormFloat64()
			x = dtype.round(x)
			v[i] = x
		}
		w[p.Name] = v
	}
	if cfg.TiedEmbed {
		w["lm_head.weight"] = w["model.embed_tokens.weight"]
	}
	return w
}
