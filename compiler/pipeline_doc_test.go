package compiler

import (
	"os"
	"strings"
	"testing"
)

// TestPipelineTableInDocs: the table of passes per graph in
// docs/compiler.md lists exactly the pipelines the compiler runs.
func TestPipelineTableInDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/compiler.md")
	if err != nil {
		t.Fatal(err)
	}
	for graph, passes := range pipelines {
		prefix := "| " + graph + ".onnx | "
		var row string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, prefix) {
				row = strings.TrimSuffix(strings.TrimPrefix(line, prefix), " |")
				break
			}
		}
		if want := strings.Join(passes, " → "); row != want {
			t.Errorf("docs/compiler.md, %s.onnx:\n have %s\n want %s", graph, row, want)
		}
	}
}
