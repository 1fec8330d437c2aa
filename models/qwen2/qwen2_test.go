package qwen2

import (
	"errors"
	"testing"
)

func TestPresetsMatchPublishedCheckpoints(t *testing.T) {
	// Parameter counts published for the checkpoints (tied embeddings counted
	// once): 0.49B, 3.09B and 7.62B.
	cases := []struct {
		name     string
		min, max int64
	}{
		{"qwen2.5-0.5b", 490e6, 500e6},
		{"qwen2.5-3b", 3.05e9, 3.10e9},
		{"qwen2.5-7b", 7.60e9, 7.65e9},
	}
	for _, c := range cases {
		cfg, err := Preset(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n := cfg.ParamCount(); n < c.min || n > c.max {
			t.Errorf("%s: %d parameters, want in [%d, %d]", c.name, n, c.min, c.max)
		}
		if cfg.HeadDim*cfg.Heads != cfg.Hidden {
			t.Errorf("%s: head dim %d × heads %d != hidden %d", c.name, cfg.HeadDim, cfg.Heads, cfg.Hidden)
		}
	}
	tiny, err := Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if tiny.Vocab < 2003 || tiny.Layers != 2 || tiny.Hidden != 64 || tiny.KVHeads != 2 || !tiny.TiedEmbed || !tiny.QKVBias {
		t.Errorf("tiny preset = %+v", tiny)
	}
	if _, err := Preset("qwen3"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("Preset(qwen3) error = %v, want ErrUnknownPreset", err)
	}
	if names := PresetNames(); len(names) != 4 || names[0] != "tiny" || names[3] != "qwen2.5-7b" {
		t.Errorf("PresetNames() = %v", names)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cfg, _ := Preset("tiny")
	cfg.KVHeads = 3
	if err := cfg.Validate(); err == nil {
		t.Fatal("heads 4 with kv heads 3 accepted")
	}
	cfg.KVHeads = 0
	if err := cfg.Validate(); err == nil || err.Error() != "qwen2: config kv heads must be positive, got 0" {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestModulePathRoundTrip(t *testing.T) {
	want := map[TargetKind]string{
		TargetQ: "model.layers.7.self_attn.q_proj", TargetK: "model.layers.7.self_attn.k_proj",
		TargetV: "model.layers.7.self_attn.v_proj", TargetO: "model.layers.7.self_attn.o_proj",
		TargetGate: "model.layers.7.mlp.gate_proj", TargetUp: "model.layers.7.mlp.up_proj",
		TargetDown: "model.layers.7.mlp.down_proj",
	}
	for _, k := range TargetKinds() {
		p := ModulePath(7, k)
		if p != want[k] {
			t.Errorf("ModulePath(7, %v) = %q, want %q", k, p, want[k])
		}
		for _, name := range []string{p, p + ".weight", p + ".bias"} {
			l, got, err := ParseModulePath(name)
			if err != nil || l != 7 || got != k {
				t.Errorf("ParseModulePath(%q) = %d, %v, %v", name, l, got, err)
			}
		}
		if k2, err := ParseTargetKind(k.String()); err != nil || k2 != k {
			t.Errorf("ParseTargetKind(%q) = %v, %v", k.String(), k2, err)
		}
	}
	if s := NodeScope(0, TargetQ); s != "/model/layers.0/self_attn/q_proj" {
		t.Errorf("NodeScope = %q", s)
	}
	for _, bad := range []string{"", "model.layers.x.self_attn.q_proj", "model.layers.01.self_attn.q_proj",
		"model.layers.-1.self_attn.q_proj", "model.layers.0.mlp.q_proj", "model.layers.0.self_attn.q_proj.lora_A",
		"layers.0.self_attn.q_proj", "model.layers.0.self_attn.qkv_proj"} {
		if _, _, err := ParseModulePath(bad); err == nil {
			t.Errorf("ParseModulePath(%q) accepted", bad)
		}
	}
}

func TestParseTargetKinds(t *testing.T) {
	ks, err := ParseTargetKinds("q, v,q,down_proj")
	if err != nil || len(ks) != 3 || ks[0] != TargetQ || ks[1] != TargetV || ks[2] != TargetDown {
		t.Fatalf("ParseTargetKinds = %v, %v", ks, err)
	}
	for _, bad := range []string{"", " , ", "q,lm_head"} {
		if _, err := ParseTargetKinds(bad); err == nil {
			t.Errorf("ParseTargetKinds(%q) accepted", bad)
		}
	}
}

func TestTags(t *testing.T) {
	tags := Tags()
	if len(tags) != 8 || tags[0] != "<search>" || tags[3] != "</information>" || tags[7] != "</think>" {
		t.Fatalf("Tags() = %v", tags)
	}
}
