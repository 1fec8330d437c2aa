package compiler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// atOpset rewrites the synthesized opset-17 model to another default-domain
// opset, as an exporter targeting it would write it: before 14, Reshape has
// no allowzero; from 18 on, the reductions other than ReduceSum take their
// axes as an input.
func atOpset(t *testing.T, src, dir string, opset int64) string {
	t.Helper()
	m, err := ir.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	m.SetOpset("", opset)
	m.IRVersion = ir.IRVersionForOpset(opset)
	b := ir.NewBuilder(m.Graph)
	for _, n := range m.Graph.Nodes {
		if opset < 14 && n.OpType == "Reshape" && n.AttrInt("allowzero", 0) == 0 {
			n.Attrs = nil // allowzero (default 0) came with opset 14
		}
		if opset >= 18 && strings.HasPrefix(n.OpType, "Reduce") && n.OpType != "ReduceSum" {
			if a := n.Attr("axes"); a != nil {
				n.Inputs = append(n.Inputs, b.Ints(n.Name+"/axes", a.GetInts()...))
				var kept []*onnxpb.AttributeProto
				for _, x := range n.Attrs {
					if x.GetName() != "axes" {
						kept = append(kept, x)
					}
				}
				n.Attrs = kept
			}
		}
	}
	if err := ir.CheckModel(m); err != nil {
		t.Fatalf("the opset-%d source is not valid: %v", opset, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.onnx")
	if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEveryOpset compiles the tiny Qwen2 written at every opset the
// exporters produce (13 to 23) and opens every emitted graph in ONNX
// Runtime, which refuses a graph with an op or attribute its opset lacks
// (the loss head's ScatterElements reduction needs 16), then runs one
// training step.
func TestEveryOpset(t *testing.T) {
	orttest.Init(t)
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Layers = 1
	dir := t.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Seed: 3, Storage: synth.StorageInline})
	if err != nil {
		t.Fatal(err)
	}
	for opset := int64(13); opset <= 23; opset++ {
		src := atOpset(t, res.ModelPath, filepath.Join(dir, "opset", strings.Repeat("x", int(opset-12))), opset)
		out := filepath.Join(dir, "out", strings.Repeat("x", int(opset-12)))
		man, err := compiler.Compile(src, out, compiler.Options{Rank: 2, Check: true})
		if err != nil {
			t.Fatalf("opset %d: %v", opset, err)
		}
		for name, g := range man.Graphs {
			s, err := runtime.NewSession(filepath.Join(out, g.File), &runtime.Options{Config: g.SessionConfig})
			if err != nil {
				t.Fatalf("opset %d: %s: %v", opset, name, err)
			}
			s.Destroy()
		}
	}
}

// TestCheckOpset: the schema table refuses what ONNX Runtime refuses.
func TestCheckOpset(t *testing.T) {
	g := &ir.Graph{Nodes: []*ir.Node{{Name: "s", OpType: "ScatterElements", Inputs: []string{"a", "b", "c"}, Outputs: []string{"d"},
		Attrs: []*onnxpb.AttributeProto{ir.AttrString("reduction", "add")}}}}
	if err := ir.CheckOpset(g, 15); err == nil || !strings.Contains(err.Error(), "reduction needs opset ≥ 16") {
		t.Errorf("ScatterElements reduction at opset 15: %v", err)
	}
	if err := ir.CheckOpset(g, 16); err != nil {
		t.Errorf("at opset 16: %v", err)
	}
	r := &ir.Graph{Nodes: []*ir.Node{{Name: "r", OpType: "ReduceMean", Inputs: []string{"a"}, Outputs: []string{"b"},
		Attrs: []*onnxpb.AttributeProto{ir.AttrInts("axes", -1)}}}}
	if err := ir.CheckOpset(r, 18); err == nil {
		t.Error("ReduceMean with an axes attribute passed at opset 18")
	}
	if err := ir.CheckOpset(r, 17); err != nil {
		t.Errorf("ReduceMean with an axes attribute at opset 17: %v", err)
	}
}
