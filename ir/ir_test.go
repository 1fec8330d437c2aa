package ir_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

var fixtures = []string{
	"../testdata/onnx/ortgenai-static-scatter-bias-decoder/model.onnx",
	"../testdata/onnx/ortgenai-tiny-random-llama-fp16/model.onnx",
	"../testdata/onnx/optimum-tiny-distilbert/model.onnx",
}

func TestParseExporterFixtures(t *testing.T) {
	for _, path := range fixtures {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			m, err := ir.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := ir.CheckModel(m); err != nil {
				t.Fatal(err)
			}
			if len(m.Graph.Nodes) == 0 || len(m.Graph.Initializers) == 0 {
				t.Fatalf("parsed %d nodes and %d initializers", len(m.Graph.Nodes), len(m.Graph.Initializers))
			}
		})
	}
}

func TestExternalDataIsNotRead(t *testing.T) {
	before := ir.ExternalReads()
	m, err := ir.Load(fixtures[1])
	if err != nil {
		t.Fatal(err)
	}
	ext := 0
	for _, init := range m.Graph.Initializers {
		if init.External != nil {
			ext++
		}
	}
	if ext != 23 {
		t.Fatalf("got %d external initializers, the fixture has 23", ext)
	}
	if _, err := ir.Marshal(m, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := ir.ExternalReads() - before; got != 0 {
		t.Fatalf("parse+emit read external data %d times", got)
	}
}

// TestRoundTrip checks parse → emit → parse gives the same graph, and that
// emitting twice gives the same bytes.
func TestRoundTrip(t *testing.T) {
	for _, path := range fixtures {
		m, err := ir.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		b1, err := ir.Marshal(m, ir.EmitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ir.Parse(b1, m.Path)
		if err != nil {
			t.Fatal(err)
		}
		if d1, d2 := ir.Dump(m), ir.Dump(m2); d1 != d2 {
			t.Fatalf("%s: dump changed after a round trip", path)
		}
		b2, err := ir.Marshal(m2, ir.EmitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(b1) != string(b2) {
			t.Fatalf("%s: emission is not stable", path)
		}
	}
}

// TestRawDataIsByteExact compares initializer bytes with the protobuf
// decoded independently of the IR.
func TestRawDataIsByteExact(t *testing.T) {
	raw, err := os.ReadFile(fixtures[0])
	if err != nil {
		t.Fatal(err)
	}
	var pb onnxpb.ModelProto
	if err := proto.Unmarshal(raw, &pb); err != nil {
		t.Fatal(err)
	}
	m, err := ir.Parse(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, tp := range pb.Graph.Initializer {
		got := m.Graph.Initializers[i]
		if tp.RawData != nil && string(tp.RawData) != string(got.Raw) {
			t.Fatalf("initializer %q: bytes differ", tp.GetName())
		}
	}
}

func writeModel(t *testing.T, dir string, mutate func(*onnxpb.ModelProto)) string {
	t.Helper()
	m, err := ir.Load(fixtures[1])
	if err != nil {
		t.Fatal(err)
	}
	pb, err := ir.ToProto(m, ir.EmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(fixtures[1]), "model.onnx.data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx.data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mutate(pb)
	b, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func setExternal(pb *onnxpb.ModelProto, key, value string) {
	for _, e := range pb.Graph.Initializer[0].ExternalData {
		if e.GetKey() == key {
			e.Value = proto.String(value)
		}
	}
}

// externalTensor is a float32 [1] tensor whose data lies at location.
func externalTensor(location string) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String("ext"), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{1},
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String(location)}, {Key: proto.String("length"), Value: proto.String("4")}}}
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(t *testing.T, dir string) string
		want   error
		phrase string
	}{
		{"not onnx", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "model.onnx")
			os.WriteFile(p, []byte("this is a text file, not a model\n"), 0o644)
			return p
		}, ir.ErrNotONNX, "not an ONNX model"},
		{"truncated", func(t *testing.T, dir string) string {
			b, _ := os.ReadFile(fixtures[0])
			p := filepath.Join(dir, "model.onnx")
			os.WriteFile(p, b[:len(b)/2], 0o644)
			return p
		}, ir.ErrNotONNX, "truncated"},
		{"missing data file", func(t *testing.T, dir string) string {
			p := writeModel(t, dir, func(*onnxpb.ModelProto) {})
			os.Remove(filepath.Join(dir, "model.onnx.data"))
			return p
		}, ir.ErrExternalData, "model.onnx.data"},
		{"absolute location", func(t *testing.T, dir string) string {
			return writeModel(t, dir, func(pb *onnxpb.ModelProto) { setExternal(pb, "location", "/etc/passwd") })
		}, ir.ErrExternalData, "absolute"},
		{"escaping location", func(t *testing.T, dir string) string {
			return writeModel(t, dir, func(pb *onnxpb.ModelProto) { setExternal(pb, "location", "../../model.onnx.data") })
		}, ir.ErrExternalData, "leaves the model's folder"},
		{"link out of the folder", func(t *testing.T, dir string) string {
			p := writeModel(t, dir, func(*onnxpb.ModelProto) {})
			data := filepath.Join(dir, "model.onnx.data")
			outside := filepath.Join(t.TempDir(), "elsewhere.data")
			os.Rename(data, outside)
			os.Symlink(outside, data)
			return p
		}, ir.ErrExternalData, "outside the model's folder"},
		{"past the end", func(t *testing.T, dir string) string {
			return writeModel(t, dir, func(pb *onnxpb.ModelProto) { setExternal(pb, "offset", "2130000") })
		}, ir.ErrExternalData, "past the end"},
		{"bad offset", func(t *testing.T, dir string) string {
			return writeModel(t, dir, func(pb *onnxpb.ModelProto) { setExternal(pb, "offset", "-4") })
		}, ir.ErrExternalData, "non-negative"},
		// Tensors in attributes are kept as protobuf, but their external
		// references are checked like the initializers'.
		{"escaping Constant tensor", func(t *testing.T, dir string) string {
			return writeModel(t, dir, func(pb *onnxpb.ModelProto) {
				pb.Graph.Node = append(pb.Graph.Node, &onnxpb.NodeProto{Name: proto.String("sneaky"), OpType: proto.String("Constant"),
					Output: []string{"sneaky_out"}, Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(),
						T: externalTensor("../../../../etc/passwd")}}})
			})
		}, ir.ErrExternalData, "leaves the model's folder"},
		{"escaping initializer in an If body", func(t *testing.T, dir string) string {
			return writeModel(t, dir, func(pb *onnxpb.ModelProto) {
				body := &onnxpb.GraphProto{Name: proto.String("then"), Initializer: []*onnxpb.TensorProto{externalTensor("/etc/passwd")}}
				pb.Graph.Node = append(pb.Graph.Node, &onnxpb.NodeProto{Name: proto.String("branch"), OpType: proto.String("If"),
					Input: []string{"cond"}, Output: []string{"branch_out"}, Attribute: []*onnxpb.AttributeProto{
						{Name: proto.String("then_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: body},
						{Name: proto.String("else_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: body}}})
			})
		}, ir.ErrExternalData, "absolute"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.setup(t, t.TempDir())
			_, err := ir.Load(path)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.phrase) {
				t.Fatalf("error %q does not say %q", err, c.phrase)
			}
		})
	}
}

func TestCheckFindsViolations(t *testing.T) {
	f32 := ir.TensorType(ir.Float32, ir.Sym("n"))
	g := &ir.Graph{
		Inputs:  []*ir.ValueInfo{{Name: "x", Type: f32}},
		Outputs: []*ir.ValueInfo{{Name: "z", Type: f32}},
		Nodes: []*ir.Node{
			{Name: "b", OpType: "Neg", Inputs: []string{"y"}, Outputs: []string{"z"}},
			{Name: "a", OpType: "Neg", Inputs: []string{"x"}, Outputs: []string{"y"}},
		},
	}
	if err := ir.Check(g); err == nil || !strings.Contains(err.Error(), `reads "y"`) {
		t.Fatalf("out-of-order graph: got %v", err)
	}
	if err := ir.TopoSort(g); err != nil {
		t.Fatal(err)
	}
	if err := ir.Check(g); err != nil {
		t.Fatalf("after TopoSort: %v", err)
	}
	g.Nodes = append(g.Nodes, &ir.Node{Name: "c", OpType: "Neg", Inputs: []string{"x"}, Outputs: []string{"y"}})
	if err := ir.Check(g); err == nil || !strings.Contains(err.Error(), "SSA") {
		t.Fatalf("duplicate definition: got %v", err)
	}
	g.Nodes = g.Nodes[:2]
	g.Inputs[0].Type = nil
	if err := ir.Check(g); err == nil || !strings.Contains(err.Error(), "no tensor type") {
		t.Fatalf("untyped input: got %v", err)
	}
}

// FuzzParse checks that parsing never panics and that parse → emit → parse
// is stable for whatever parses.
func FuzzParse(f *testing.F) {
	for _, p := range fixtures[:1] {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x08, 0x07, 0x3a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ir.Parse(b, "")
		if err != nil {
			return
		}
		b1, err := ir.Marshal(m, ir.EmitOptions{})
		if err != nil {
			return
		}
		m2, err := ir.Parse(b1, "")
		if err != nil {
			t.Fatalf("re-parse of emitted model failed: %v", err)
		}
		if ir.Dump(m) != ir.Dump(m2) {
			t.Fatal("dump changed after a round trip")
		}
	})
}

// TestTruncatedExternalDataIsAnError: a data file that became shorter than
// the model declares after it was loaded is an error naming the tensor and
// the file; its missing bytes used to come back as zeros.
func TestTruncatedExternalDataIsAnError(t *testing.T) {
	src := filepath.Dir(fixtures[1])
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := ir.Load(filepath.Join(dir, filepath.Base(fixtures[1])))
	if err != nil {
		t.Fatal(err)
	}
	var last *ir.Tensor // the tensor that ends furthest into the file
	for _, init := range m.Graph.Initializers {
		if e := init.External; e != nil && (last == nil || e.Offset+e.Length > last.External.Offset+last.External.Length) {
			last = init
		}
	}
	if last == nil {
		t.Fatal("the fixture has no external tensor")
	}
	if _, err := last.Bytes(); err != nil {
		t.Fatalf("before truncating: %v", err)
	}
	if err := os.Truncate(last.External.File, last.External.Offset+8); err != nil {
		t.Fatal(err)
	}
	if _, err := last.Bytes(); err == nil || !strings.Contains(err.Error(), "shorter than the model declares") || !strings.Contains(err.Error(), last.Name) {
		t.Fatalf("reading %s from a truncated file: %v", last.Name, err)
	}
}
