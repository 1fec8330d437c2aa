package peft

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/dartc/dartc/safetensors"
)

type module struct {
	name    string
	in, out int
}

var modules = []module{
	{"model.layers.0.self_attn.q_proj", 4, 6},
	{"model.layers.0.mlp.down_proj", 5, 3},
	{"model.layers.1.self_attn.q_proj", 4, 6},
}

const rank = 2

// value is the element [i][j] of a source matrix, distinct for every
// role, module, matrix and position so that any misplacement shows.
func value(role, mod int, matrix string, i, j int) float32 {
	v := float32(role*1000+mod*100+i*10+j) + 0.25
	if matrix == "B" {
		v = -v
	}
	return v
}

func writeDual(t *testing.T, path string, meta map[string]string) {
	t.Helper()
	var ts []safetensors.Tensor
	for r, role := range []string{"reason", "tool"} {
		for m, mod := range modules {
			a := make([]float32, mod.in*rank)
			for i := range mod.in {
				for k := range rank {
					a[i*rank+k] = value(r, m, "A", i, k)
				}
			}
			b := make([]float32, rank*mod.out)
			for k := range rank {
				for o := range mod.out {
					b[k*mod.out+o] = value(r, m, "B", k, o)
				}
			}
			ts = append(ts,
				safetensors.FromFloat32(mod.name+".lora_A."+role+".weight", []int64{int64(mod.in), rank}, a),
				safetensors.FromFloat32(mod.name+".lora_B."+role+".weight", []int64{rank, int64(mod.out)}, b))
		}
	}
	if err := safetensors.Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
}

func goodMeta() map[string]string {
	return map[string]string{"rank": "2", "alpha": "16", "roles": "reason,tool", "base_model": "Qwen/Qwen2.5-0.5B"}
}

// rawFile parses a safetensors file by hand (not with package safetensors),
// checking the layout, and returns its header entries and data section.
type rawEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

func readRaw(t *testing.T, path string) (map[string]rawEntry, map[string]string, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &header); err != nil {
		t.Fatalf("header: %v", err)
	}
	var meta map[string]string
	entries := map[string]rawEntry{}
	for k, v := range header {
		if k == "__metadata__" {
			json.Unmarshal(v, &meta)
			continue
		}
		var e rawEntry
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatal(err)
		}
		entries[k] = e
	}
	data := b[8+n:]
	// Offsets must tile the data section.
	var spans [][2]int64
	for _, e := range entries {
		spans = append(spans, [2]int64{e.DataOffsets[0], e.DataOffsets[1]})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	next := int64(0)
	for _, s := range spans {
		if s[0] != next {
			t.Errorf("span %v does not start at %d", s, next)
		}
		next = s[1]
	}
	if next != int64(len(data)) {
		t.Errorf("tensors cover %d of %d data bytes", next, len(data))
	}
	return entries, meta, data
}

func elem(data []byte, e rawEntry, i, j int) float32 {
	off := e.DataOffsets[0] + 4*(int64(i)*e.Shape[1]+int64(j))
	return math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
}

func TestExportKeysShapesLayout(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "adapters.safetensors")
	writeDual(t, src, goodMeta())
	for r, role := range []string{"reason", "tool"} {
		out := filepath.Join(dir, "peft-"+role)
		if err := Export(src, role, out); err != nil {
			t.Fatal(err)
		}
		names, _ := os.ReadDir(out)
		if len(names) != 2 || names[0].Name() != ConfigFile || names[1].Name() != WeightsFile {
			t.Fatalf("directory holds %v", names)
		}
		var cfg map[string]any
		b, _ := os.ReadFile(filepath.Join(out, ConfigFile))
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2.0, "lora_alpha": 16.0,
			"base_model_name_or_path": "Qwen/Qwen2.5-0.5B", "bias": "none", "fan_in_fan_out": false, "use_rslora": false,
			"target_modules": []any{"down_proj", "q_proj"}} {
			if !reflect.DeepEqual(cfg[k], want) {
				t.Errorf("%s: config %s = %v, want %v", role, k, cfg[k], want)
			}
		}
		entries, meta, data := readRaw(t, filepath.Join(out, WeightsFile))
		if meta["format"] != "pt" {
			t.Errorf("metadata = %v", meta)
		}
		if len(entries) != 2*len(modules) {
			t.Errorf("%d tensors, want %d", len(entries), 2*len(modules))
		}
		for m, mod := range modules {
			keyA := "base_model.model." + mod.name + ".lora_A.weight"
			keyB := "base_model.model." + mod.name + ".lora_B.weight"
			a, okA := entries[keyA]
			b, okB := entries[keyB]
			if !okA || !okB {
				t.Fatalf("missing %s or %s in %v", keyA, keyB, entries)
			}
			if a.DType != "F32" || !reflect.DeepEqual(a.Shape, []int64{rank, int64(mod.in)}) || !reflect.DeepEqual(b.Shape, []int64{int64(mod.out), rank}) {
				t.Errorf("%s: A %s %v, B %v; want A [r,in]=[%d,%d], B [out,r]=[%d,%d]", mod.name, a.DType, a.Shape, b.Shape, rank, mod.in, mod.out, rank)
			}
			for i := range mod.in {
				for k := range rank {
					if got, want := elem(data, a, k, i), value(r, m, "A", i, k); got != want {
						t.Errorf("%s PEFT A[%d][%d] = %v, want source A[%d][%d] = %v", mod.name, k, i, got, i, k, want)
					}
				}
			}
			for k := range rank {
				for o := range mod.out {
					if got, want := elem(data, b, o, k), value(r, m, "B", k, o); got != want {
						t.Errorf("%s PEFT B[%d][%d] = %v, want source B[%d][%d] = %v", mod.name, o, k, got, k, o, want)
					}
				}
			}
			// Semantics: PEFT computes B_p·(A_p·x); dartc computes (x·A)·B. Same
			// vector for x = e_0 + 2·e_last.
			x := make([]float64, mod.in)
			x[0], x[mod.in-1] = 1, 2
			for o := range mod.out {
				var onnx, hf float64
				for k := range rank {
					var xa, apx float64
					for i := range mod.in {
						xa += x[i] * float64(value(r, m, "A", i, k))
						apx += float64(elem(data, a, k, i)) * x[i]
					}
					onnx += xa * float64(value(r, m, "B", k, o))
					hf += float64(elem(data, b, o, k)) * apx
				}
				if math.Abs(onnx-hf) > 1e-9*math.Abs(onnx) {
					t.Errorf("%s output %d: dartc %v, PEFT %v", mod.name, o, onnx, hf)
				}
			}
		}
	}
}

func TestParseAdapterName(t *testing.T) {
	n, ok := ParseAdapterName("model.layers.12.mlp.gate_proj.lora_B.tool.weight")
	if !ok || n != (AdapterName{"model.layers.12.mlp.gate_proj", "B", "tool"}) {
		t.Errorf("parse = %+v, %v", n, ok)
	}
	if n.PEFTKey() != "base_model.model.model.layers.12.mlp.gate_proj.lora_B.weight" || n.String() != "model.layers.12.mlp.gate_proj.lora_B.tool.weight" {
		t.Errorf("keys %s / %s", n.PEFTKey(), n)
	}
	for _, bad := range []string{"model.embed_tokens.weight", "x.lora_A.weight", "lora_A.tool.weight", "a.lora_C.tool.weight", "a.lora_A.tool.bias"} {
		if n, ok := ParseAdapterName(bad); ok {
			t.Errorf("ParseAdapterName(%q) = %+v", bad, n)
		}
	}
}

func TestExportRejects(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		meta map[string]string
		role string
		want string
	}{
		{"unknown role", goodMeta(), "planner", `role "planner" not in`},
		{"no rank", map[string]string{"alpha": "16", "roles": "reason,tool"}, "tool", `"rank"`},
		{"wrong rank", map[string]string{"rank": "4", "alpha": "16", "roles": "reason,tool"}, "tool", "want [in, 4]"},
		{"bad alpha", map[string]string{"rank": "2", "alpha": "x", "roles": "reason,tool"}, "tool", `"alpha"`},
	}
	for _, c := range cases {
		src := filepath.Join(dir, c.name+".safetensors")
		writeDual(t, src, c.meta)
		out := filepath.Join(dir, c.name+"-out")
		err := Export(src, c.role, out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		if _, serr := os.Stat(out); !os.IsNotExist(serr) {
			t.Errorf("%s: output directory created on error", c.name)
		}
	}
	// Missing B.
	src := filepath.Join(dir, "noB.safetensors")
	ts := []safetensors.Tensor{safetensors.FromFloat32("m.lora_A.tool.weight", []int64{3, 2}, make([]float32, 6))}
	if err := safetensors.Write(src, ts, goodMeta()); err != nil {
		t.Fatal(err)
	}
	if err := Export(src, "tool", filepath.Join(dir, "noB")); err == nil || !strings.Contains(err.Error(), "lora_B") {
		t.Errorf("missing B: err = %v", err)
	}
	// Non-empty output directory.
	good := filepath.Join(dir, "good.safetensors")
	writeDual(t, good, goodMeta())
	busy := filepath.Join(dir, "busy")
	os.Mkdir(busy, 0o755)
	os.WriteFile(filepath.Join(busy, "keep"), []byte("x"), 0o644)
	if err := Export(good, "tool", busy); !errors.Is(err, ErrOutputExists) {
		t.Errorf("busy output: err = %v", err)
	}
	// An empty existing directory is fine.
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if err := Export(good, "tool", empty); err != nil {
		t.Errorf("empty output: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
}
