package compiler_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2/synth"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGoldenGraphs compares deterministic text dumps of the graphs compiled
// from a one-layer tiny model with the reviewed files in testdata/golden:
// the whole decode graph, and an op histogram of each graph. `make golden`
// rewrites them.
func TestGoldenGraphs(t *testing.T) {
	out, _ := tinyCompiled(t, 1, synth.Options{Seed: 1})
	for _, name := range []string{"decode", "logprobs", "train", "adamw"} {
		m, err := ir.Load(filepath.Join(out, name+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "tiny1_"+name+"_ops.txt", opHistogram(m))
	}
	m, err := ir.Load(filepath.Join(out, "decode.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "tiny1_decode.txt", ir.Dump(m))
}

func opHistogram(m *ir.Model) string {
	count := map[string]int{}
	for _, n := range m.Graph.Nodes {
		count[n.OpType]++
	}
	ops := make([]string, 0, len(count))
	for op := range count {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	fmt.Fprintf(&b, "nodes %d, inputs %d, outputs %d, initializers %d\n", len(m.Graph.Nodes), len(m.Graph.Inputs), len(m.Graph.Outputs), len(m.Graph.Initializers))
	for _, op := range ops {
		fmt.Fprintf(&b, "%-16s %d\n", op, count[op])
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make golden to create it)", err)
	}
	if string(want) != got {
		t.Fatalf("%s changed; review the difference and run make golden if it is intended:\n%s", path, firstDiff(string(want), got))
	}
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("lengths differ: %d vs %d lines", len(la), len(lb))
}
