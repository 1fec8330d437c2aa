package qwen2ref

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/dartc/dartc/models/qwen2"
)

type goldenStep struct {
	IDs          [][]int64   `json:"ids"`
	Mask         [][]int64   `json:"mask"`
	Pos          [][]int64   `json:"pos"`
	Logits       []float64   `json:"logits"`
	PresentKey   [][]float64 `json:"present_key"`
	PresentValue [][]float64 `json:"present_value"`
}

type golden struct {
	Config struct {
		Layers, Hidden, Heads, KVHeads, HeadDim, Intermediate, Vocab int
		RopeTheta, RMSEps                                            float64
		Tied                                                         bool
	}
	Weights map[string][]float64 `json:"weights"`
	Prefill goldenStep           `json:"prefill"`
	Decode  goldenStep           `json:"decode"`
}

func maxDiff(t *testing.T, got, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	var m float64
	for i := range got {
		m = math.Max(m, math.Abs(got[i]-want[i]))
	}
	return m
}

// TestMatchesTransformers compares with Hugging Face transformers' float32
// Qwen2ForCausalLM (testdata/PROVENANCE.md), left padding and KV cache
// included, so agreement is at float32 precision.
func TestMatchesTransformers(t *testing.T) {
	raw, err := os.ReadFile("testdata/hf_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	var cfgRaw struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(raw, &cfgRaw); err != nil {
		t.Fatal(err)
	}
	num := func(k string) int { return int(cfgRaw.Config[k].(float64)) }
	cfg := qwen2.Config{Layers: num("layers"), Hidden: num("hidden"), Heads: num("heads"), KVHeads: num("kv_heads"),
		HeadDim: num("head_dim"), Intermediate: num("intermediate"), Vocab: num("vocab"),
		RopeTheta: cfgRaw.Config["rope_theta"].(float64), RMSEps: cfgRaw.Config["rms_eps"].(float64),
		TiedEmbed: cfgRaw.Config["tied"].(bool), QKVBias: true, MaxPositions: 64}
	m, err := New(cfg, g.Weights)
	if err != nil {
		t.Fatal(err)
	}
	m.MaskValue = -math.MaxFloat32
	const tol = 1e-5
	logits, cache, err := m.Forward(g.Prefill.IDs, g.Prefill.Mask, g.Prefill.Pos, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, logits, g.Prefill.Logits); d > tol {
		t.Errorf("prefill logits differ from transformers by %.3g", d)
	}
	logits, cache, err = m.Forward(g.Decode.IDs, g.Decode.Mask, g.Decode.Pos, cache)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, logits, g.Decode.Logits); d > tol {
		t.Errorf("decode logits differ from transformers by %.3g", d)
	}
	for l := 0; l < cfg.Layers; l++ {
		if d := maxDiff(t, cache.Key[l], g.Decode.PresentKey[l]); d > tol {
			t.Errorf("layer %d keys differ by %.3g", l, d)
		}
		if d := maxDiff(t, cache.Value[l], g.Decode.PresentValue[l]); d > tol {
			t.Errorf("layer %d values differ by %.3g", l, d)
		}
	}
}

// randomModel draws weights with the test's own generator.
func randomModel(t *testing.T, cfg qwen2.Config) *Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	w := map[string][]float64{}
	draw := func(name string, n int, mean, std float64) {
		v := make([]float64, n)
		for i := range v {
			v[i] = mean + std*rng.NormFloat64()
		}
		w[name] = v
	}
	draw("model.embed_tokens.weight", cfg.Vocab*cfg.Hidden, 0, 0.3)
	draw("model.norm.weight", cfg.Hidden, 1, 0.1)
	for l := 0; l < cfg.Layers; l++ {
		p := "model.layers." + string(rune('0'+l)) + "."
		draw(p+"input_layernorm.weight", cfg.Hidden, 1, 0.1)
		draw(p+"post_attention_layernorm.weight", cfg.Hidden, 1, 0.1)
		for _, k := range qwen2.TargetKinds() {
			out, in := cfg.LinearShape(k)
			draw(qwen2.ModulePath(l, k)+".weight", out*in, 0, 1/math.Sqrt(float64(in)))
			if cfg.HasBias(k) {
				draw(qwen2.ModulePath(l, k)+".bias", out, 0, 0.1)
			}
		}
	}
	m, err := New(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func smallConfig() qwen2.Config {
	return qwen2.Config{Layers: 2, Hidden: 24, Heads: 6, KVHeads: 2, HeadDim: 4, Intermediate: 40, Vocab: 30,
		RopeTheta: 1e4, RMSEps: 1e-6, TiedEmbed: true, QKVBias: true, MaxPositions: 64}
}

func rows(v ...[]int64) [][]int64 { return v }

// TestCacheEqualsFullSequence: one pass over the whole sequence and a prefill
// followed by single-token steps through the cache give the same logits.
func TestCacheEqualsFullSequence(t *testing.T) {
	m := randomModel(t, smallConfig())
	ids := rows([]int64{3, 7, 1, 29, 4, 11}, []int64{0, 2, 5, 8, 13, 21})
	mask := rows([]int64{1, 1, 1, 1, 1, 1}, []int64{0, 1, 1, 1, 1, 1})
	pos := rows([]int64{0, 1, 2, 3, 4, 5}, []int64{1, 0, 1, 2, 3, 4})
	full, fullCache, err := m.Forward(ids, mask, pos, nil)
	if err != nil {
		t.Fatal(err)
	}
	V := m.cfg.Vocab
	cut := func(r [][]int64, a, b int) [][]int64 { return rows(r[0][a:b], r[1][a:b]) }
	_, cache, err := m.Forward(cut(ids, 0, 4), cut(mask, 0, 4), cut(pos, 0, 4), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4; i < 6; i++ {
		var step []float64
		step, cache, err = m.Forward(cut(ids, i, i+1), cut(mask, 0, i+1), cut(pos, i, i+1), cache)
		if err != nil {
			t.Fatal(err)
		}
		for b := 0; b < 2; b++ {
			want := full[(b*6+i)*V : (b*6+i+1)*V]
			if d := maxDiff(t, step[b*V:(b+1)*V], want); d > 1e-12 {
				t.Errorf("row %d position %d: cached logits differ from the full pass by %.3g", b, i, d)
			}
		}
	}
	// Keys at padded positions differ by design: a fully masked query
	// attends uniformly to every key present, and the full pass has more.
	hd, kv := m.cfg.HeadDim, m.cfg.KVHeads
	for l := range cache.Key {
		for b := 0; b < 2; b++ {
			for h := 0; h < kv; h++ {
				for p := 0; p < 6; p++ {
					if mask[b][p] == 0 {
						continue
					}
					at := ((b*kv+h)*6 + p) * hd
					if d := maxDiff(t, cache.Key[l][at:at+hd], fullCache.Key[l][at:at+hd]); d > 1e-12 {
						t.Errorf("layer %d row %d head %d position %d: cached key differs by %.3g", l, b, h, p, d)
					}
				}
			}
		}
	}
}

// TestRelativePositions: rotary attention depends only on position
// differences, so shifting every position id leaves the logits unchanged,
// while permuting the tokens changes them.
func TestRelativePositions(t *testing.T) {
	m := randomModel(t, smallConfig())
	ids := rows([]int64{3, 7, 1, 29, 4})
	mask := rows([]int64{1, 1, 1, 1, 1})
	a, _, err := m.Forward(ids, mask, rows([]int64{0, 1, 2, 3, 4}), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := m.Forward(ids, mask, rows([]int64{37, 38, 39, 40, 41}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, a, b); d > 1e-9 {
		t.Errorf("shifted positions change logits by %.3g", d)
	}
	c, _, err := m.Forward(ids, mask, rows([]int64{0, 2, 1, 3, 4}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, a, c); d < 1e-6 {
		t.Errorf("swapping two positions changed logits by only %.3g", d)
	}
}

// TestLeftPaddingIsInvisible: a left-padded row's real tokens get the logits
// of the same tokens without padding, and padded rows never produce NaN.
func TestLeftPaddingIsInvisible(t *testing.T) {
	for _, maskValue := range []float64{-math.MaxFloat64, -math.MaxFloat32} {
		m := randomModel(t, smallConfig())
		m.MaskValue = maskValue
		plain, _, err := m.Forward(rows([]int64{9, 4, 17}), rows([]int64{1, 1, 1}), rows([]int64{0, 1, 2}), nil)
		if err != nil {
			t.Fatal(err)
		}
		padded, _, err := m.Forward(rows([]int64{0, 0, 9, 4, 17}), rows([]int64{0, 0, 1, 1, 1}), rows([]int64{1, 1, 0, 1, 2}), nil)
		if err != nil {
			t.Fatal(err)
		}
		V := m.cfg.Vocab
		if d := maxDiff(t, padded[2*V:], plain); d > 1e-12 {
			t.Errorf("mask value %g: padding changes real tokens' logits by %.3g", maskValue, d)
		}
		for i, v := range padded {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("mask value %g: logit %d is %v", maskValue, i, v)
			}
		}
	}
}

func TestNewRejectsMissingOrMisshapenWeights(t *testing.T) {
	cfg := smallConfig()
	m := randomModel(t, cfg)
	w := map[string][]float64{}
	for k, v := range m.w {
		w[k] = v
	}
	delete(w, "model.layers.1.mlp.up_proj.weight")
	if _, err := New(cfg, w); err == nil {
		t.Error("missing up_proj accepted")
	}
	w["model.layers.1.mlp.up_proj.weight"] = make([]float64, 3)
	if _, err := New(cfg, w); err == nil {
		t.Error("up_proj with 3 values accepted")
	}
	if _, _, err := m.Forward(rows([]int64{30}), rows([]int64{1}), rows([]int64{0}), nil); err == nil {
		t.Error("token id equal to the vocabulary size accepted")
	}
}
