package passes

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
)

// tinyState loads the tiny preset (two layers) and matches the targets.
func tinyState(t *testing.T, targets ...string) *State {
	t.Helper()
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	res, err := synth.Synthesize(cfg, filepath.Join(t.TempDir(), "src"), synth.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ir.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	s := NewState(m, Options{Targets: targets, Roles: []string{"reason", "tool"}, Rank: 4, Alpha: 8})
	if err := MatchTargets(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// mergedProducts describes each A-side product after MergeLoRAInputs: the
// activation it reads and the adapters its Concat joins, in order.
func mergedProducts(t *testing.T, s *State) []string {
	t.Helper()
	prod := producers(s.Model.Graph)
	var out []string
	for _, n := range s.Model.Graph.Nodes {
		if n.OpType != "MatMul" {
			continue
		}
		if c := prod[n.Input(1)]; c != nil && c.OpType == "Concat" && strings.Contains(c.Input(0), ".lora_A.") {
			out = append(out, fmt.Sprintf("%s · [%s]", n.Input(0), strings.Join(c.Inputs, " | ")))
		}
	}
	slices.Sort(out)
	return out
}

// TestMergeLoRAInputsIgnoresTargetOrder: the merged products, and the
// order of the adapters in each, are the same whatever the order in which
// the targets were matched; q/k/v and gate/up share a product per layer.
func TestMergeLoRAInputsIgnoresTargetOrder(t *testing.T) {
	var want []string
	for trial := range 4 {
		s := tinyState(t, DefaultTargets...)
		if trial > 0 {
			rng := rand.New(rand.NewPCG(uint64(trial), 1))
			rng.Shuffle(len(s.Targets), func(i, j int) { s.Targets[i], s.Targets[j] = s.Targets[j], s.Targets[i] })
		}
		if err := DualLoRAStacked(s); err != nil {
			t.Fatal(err)
		}
		if err := MergeLoRAInputs(s); err != nil {
			t.Fatal(err)
		}
		if err := ir.Check(s.Model.Graph); err != nil {
			t.Fatal(err)
		}
		got := mergedProducts(t, s)
		if trial == 0 {
			want = got
			if len(want) != 2*4 {
				t.Fatalf("%d A-side products, want 4 per layer (q/k/v, o, gate/up, down):\n%s", len(want), strings.Join(want, "\n"))
			}
			qkv := "model.layers.0.self_attn.q_proj.lora_A.reason.weight | model.layers.0.self_attn.q_proj.lora_A.tool.weight | " +
				"model.layers.0.self_attn.k_proj.lora_A.reason.weight | model.layers.0.self_attn.k_proj.lora_A.tool.weight | " +
				"model.layers.0.self_attn.v_proj.lora_A.reason.weight | model.layers.0.self_attn.v_proj.lora_A.tool.weight]"
			if !slices.ContainsFunc(want, func(p string) bool { return strings.HasSuffix(p, qkv) }) {
				t.Fatalf("no product over layer 0's q, k and v adapters in kind order:\n%s", strings.Join(want, "\n"))
			}
			continue
		}
		if !slices.Equal(got, want) {
			t.Fatalf("targets shuffled (trial %d): products\n%s\nwant\n%s", trial, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestMergeLoRAInputsLeavesLoneTargets: with no two targets on one
// activation (q, o and up) the pass changes nothing.
func TestMergeLoRAInputsLeavesLoneTargets(t *testing.T) {
	s := tinyState(t, "q", "o", "up")
	if err := DualLoRAStacked(s); err != nil {
		t.Fatal(err)
	}
	before := ir.Dump(s.Model)
	if err := MergeLoRAInputs(s); err != nil {
		t.Fatal(err)
	}
	if after := ir.Dump(s.Model); after != before {
		t.Fatalf("the graph changed")
	}
}

// TestMergeLoRAInputsOpsets: the nodes the LoRA passes emit belong to the
// graph's opset: the Split takes its sizes as an attribute before opset 13
// and as an input from 13 on.
func TestMergeLoRAInputsOpsets(t *testing.T) {
	for _, opset := range []int64{12, 13, 18} {
		s := tinyState(t, DefaultTargets...)
		s.Model.SetOpset("", opset)
		if err := DualLoRAStacked(s); err != nil {
			t.Fatal(err)
		}
		if err := MergeLoRAInputs(s); err != nil {
			t.Fatal(err)
		}
		emitted := &ir.Graph{}
		splits := 0
		for _, n := range s.Model.Graph.Nodes {
			if strings.Contains(n.Name, "/lora") {
				emitted.Nodes = append(emitted.Nodes, n)
				if n.OpType == "Split" {
					splits++
				}
			}
		}
		if splits != 2*2 {
			t.Fatalf("opset %d: %d Splits in the LoRA branches, want one per merged group (2 per layer)", opset, splits)
		}
		if err := ir.CheckOpset(emitted, opset); err != nil {
			t.Errorf("opset %d: %v", opset, err)
		}
	}
}
