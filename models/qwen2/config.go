package qwen2

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Config holds the hyper-parameters of one Qwen2-shaped decoder, with the
// meaning (and Hugging Face config.json name) given for each field.
type Config struct {
	Name         string  // preset name, informational
	Layers       int     // num_hidden_layers
	Hidden       int     // hidden_size
	Heads        int     // num_attention_heads
	KVHeads      int     // num_key_value_heads (grouped-query attention)
	HeadDim      int     // hidden_size / num_attention_heads for all Qwen2 checkpoints
	Intermediate int     // intermediate_size of the SwiGLU MLP
	Vocab        int     // vocab_size
	RopeTheta    float64 // rope_theta
	RMSEps       float64 // rms_norm_eps
	TiedEmbed    bool    // tie_word_embeddings: lm_head shares the embedding matrix
	QKVBias      bool    // q/k/v projections carry a bias (always true in Qwen2)
	MaxPositions int     // max_position_embeddings
}

// ErrUnknownPreset is returned by Preset for a name that is not in the table.
var ErrUnknownPreset = errors.New("qwen2: unknown preset")

var presets = map[string]Config{
	// tiny is a test model; its vocabulary holds the 2003 ids of the
	// torchtune tiny tokenizer, rounded up.
	"tiny": {Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, HeadDim: 16, Intermediate: 128,
		Vocab: 2048, RopeTheta: 1e6, RMSEps: 1e-6, TiedEmbed: true, QKVBias: true, MaxPositions: 2048},
	"qwen2.5-0.5b": {Layers: 24, Hidden: 896, Heads: 14, KVHeads: 2, HeadDim: 64, Intermediate: 4864,
		Vocab: 151936, RopeTheta: 1e6, RMSEps: 1e-6, TiedEmbed: true, QKVBias: true, MaxPositions: 32768},
	"qwen2.5-3b": {Layers: 36, Hidden: 2048, Heads: 16, KVHeads: 2, HeadDim: 128, Intermediate: 11008,
		Vocab: 151936, RopeTheta: 1e6, RMSEps: 1e-6, TiedEmbed: true, QKVBias: true, MaxPositions: 32768},
	// qwen2.5-7b carries the Instruct checkpoint's max_position_embeddings (32768).
	"qwen2.5-7b": {Layers: 28, Hidden: 3584, Heads: 28, KVHeads: 4, HeadDim: 128, Intermediate: 18944,
		Vocab: 152064, RopeTheta: 1e6, RMSEps: 1e-6, TiedEmbed: false, QKVBias: true, MaxPositions: 32768},
}

// PresetNames lists the preset names in a stable order (smallest first).
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := presets[names[i]], presets[names[j]]
		if pa, pb := a.ParamCount(), b.ParamCount(); pa != pb {
			return pa < pb
		}
		return names[i] < names[j]
	})
	return names
}

// Preset returns the named configuration.
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownPreset, name, strings.Join(PresetNames(), ", "))
	}
	c.Name = name
	return c, nil
}

// Validate reports the first inconsistency in c, naming the field.
func (c Config) Validate() error {
	pos := []struct {
		name string
		v    int
	}{{"layers", c.Layers}, {"hidden", c.Hidden}, {"heads", c.Heads}, {"kv heads", c.KVHeads},
		{"head dim", c.HeadDim}, {"intermediate", c.Intermediate}, {"vocab", c.Vocab}, {"max positions", c.MaxPositions}}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("qwen2: config %s must be positive, got %d", p.name, p.v)
		}
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("qwen2: config heads (%d) must be a multiple of kv heads (%d)", c.Heads, c.KVHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("qwen2: config head dim must be even for rotary embeddings, got %d", c.HeadDim)
	}
	if c.RopeTheta <= 0 || c.RMSEps <= 0 {
		return fmt.Errorf("qwen2: config rope theta (%g) and rms eps (%g) must be positive", c.RopeTheta, c.RMSEps)
	}
	return nil
}

// QDim is the width of the query projection's output (heads × head dim).
func (c Config) QDim() int { return c.Heads * c.HeadDim }

// KVDim is the width of the key and value projections' outputs.
func (c Config) KVDim() int { return c.KVHeads * c.HeadDim }

// LinearShape gives the [out, in] shape (PyTorch orientation) of a target's weight.
func (c Config) LinearShape(k TargetKind) (out, in int) {
	switch k {
	case TargetQ:
		return c.QDim(), c.Hidden
	case TargetK, TargetV:
		return c.KVDim(), c.Hidden
	case TargetO:
		return c.Hidden, c.QDim()
	case TargetGate, TargetUp:
		return c.Intermediate, c.Hidden
	case TargetDown:
		return c.Hidden, c.Intermediate
	}
	panic(fmt.Sprintf("qwen2: unknown target kind %d", int(k)))
}

// HasBias reports whether the target linear carries a bias (q, k and v in Qwen2).
func (c Config) HasBias(k TargetKind) bool {
	return c.QKVBias && (k == TargetQ || k == TargetK || k == TargetV)
}

// ParamCount is the number of distinct parameters (a tied lm_head counts once).
func (c Config) ParamCount() int64 {
	var perLayer int64
	for _, k := range TargetKinds() {
		out, in := c.LinearShape(k)
		perLayer += int64(out) * int64(in)
		if c.HasBias(k) {
			perLayer += int64(out)
		}
	}
	perLayer += 2 * int64(c.Hidden) // two RMSNorm weights
	n := int64(c.Layers)*perLayer + int64(c.Vocab)*int64(c.Hidden) + int64(c.Hidden)
	if !c.TiedEmbed {
		n += int64(c.Vocab) * int64(c.Hidden)
	}
	return n
}
