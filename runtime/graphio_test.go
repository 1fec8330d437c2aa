package runtime_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/runtime"
	ort "github.com/yalue/onnxruntime_go"
)

// TestGraphIOMatchesORT reads the inputs and outputs of real exports from
// their files and compares them with what ONNX Runtime reports for the same
// models (names, order, element types, dims).
func TestGraphIOMatchesORT(t *testing.T) {
	orttest.Init(t)
	paths, _ := filepath.Glob("../testdata/onnx/*/model.onnx")
	more, _ := filepath.Glob("../models/export/testdata/*/*/model.onnx")
	paths = append(paths, more...)
	if len(paths) < 3 {
		t.Fatalf("found only %d fixture models", len(paths))
	}
	for _, path := range paths {
		ins, outs, err := runtime.GraphIO(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		oi, oo, err := ort.GetInputOutputInfo(path)
		if err != nil {
			t.Fatalf("%s: onnxruntime: %v", path, err)
		}
		for _, c := range []struct {
			kind string
			got  []runtime.IOInfo
			want []ort.InputOutputInfo
		}{{"inputs", ins, oi}, {"outputs", outs, oo}} {
			if len(c.got) != len(c.want) {
				t.Fatalf("%s: %d %s, onnxruntime says %d", path, len(c.got), c.kind, len(c.want))
			}
			for i, w := range c.want {
				dt, _ := runtime.DTypeFromORT(w.DataType)
				g := c.got[i]
				if g.Name != w.Name || g.DType != dt || !reflect.DeepEqual(g.Dims, []int64(w.Dimensions)) {
					t.Errorf("%s: %s %d: %v %v, onnxruntime: %s %v %v", path, c.kind, i, g.Name, g.Dims, w.Name, dt, w.Dimensions)
				}
			}
		}
	}
}
