package roundtrip_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/peft"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/safetensors"
)

var update = flag.Bool("update", false, "rewrite testdata/ (adapters, PEFT directories, dartc outputs); then run check_peft.py")

const (
	exportDir   = "../../models/export/testdata/tiny-qwen2.5"
	testdata    = "testdata"
	adapters    = "adapters.safetensors"
	outputs     = "dartc_outputs.safetensors"
	resultFile  = "result.json"
	rank, alpha = 4, 8
)

var roles = []string{"reason", "tool"}

// inputIDs is the token batch of the round trip: two unpadded rows of 8
// ids below the tiny vocabulary's 2003.
var inputIDs = [][]int64{
	{17, 512, 1033, 7, 1999, 256, 88, 901},
	{640, 3, 1500, 42, 1200, 77, 5, 1803},
}

// writeAdapters writes the dual adapter file from the fixture's reference
// adapters (N(0, 0.05²), models/export/README.md), with the metadata
// `dartc compile` writes.
func writeAdapters(t *testing.T, man *manifest.Manifest, path string) {
	t.Helper()
	ref, err := safetensors.Read(filepath.Join(exportDir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range man.AdapterNames() {
		x, err := ref.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, x)
	}
	meta := map[string]string{
		peft.MetaRank: fmt.Sprint(rank), peft.MetaAlpha: fmt.Sprint(alpha), peft.MetaRoles: strings.Join(roles, ","),
		peft.MetaBaseModel: "tiny-qwen2.5 (models/export/export_qwen2.py --tiny-random --seed 0)",
	}
	if err := safetensors.Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
}

func compile(t *testing.T) (string, *manifest.Manifest) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	man, err := compiler.Compile(filepath.Join(exportDir, "torchscript", "model.onnx"), out,
		compiler.Options{Rank: rank, Alpha: alpha, Graphs: []string{manifest.GraphDecode, manifest.GraphLogprobs}})
	if err != nil {
		t.Fatal(err)
	}
	return out, man
}

func ints(t *testing.T, rows [][]int64) *runtime.Tensor {
	t.Helper()
	var v []int64
	for _, r := range rows {
		v = append(v, r...)
	}
	x, err := runtime.FromInt64([]int64{int64(len(rows)), int64(len(rows[0]))}, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// fill returns [len(inputIDs)][n] copies of value per position index.
func fill(n int, value func(pos int) int64) [][]int64 {
	out := make([][]int64, len(inputIDs))
	for b := range out {
		out[b] = make([]int64, n)
		for p := range n {
			out[b][p] = value(p)
		}
	}
	return out
}

// dartcOutputs runs the compiled model with every position in each role:
// logits.<role> [B, S, V] from decode.onnx, one prefill per prefix length
// (the graph returns the last position's logits), and logprobs.<role>
// [B, S−1] from logprobs.onnx.
func dartcOutputs(t *testing.T, dir string, man *manifest.Manifest, adaptersPath string) []safetensors.Tensor {
	t.Helper()
	f, err := safetensors.Read(adaptersPath)
	if err != nil {
		t.Fatal(err)
	}
	adapterFeeds := map[string]*runtime.Tensor{}
	for _, x := range f.Tensors {
		v, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if adapterFeeds[x.Name], err = runtime.FromFloat32(x.Shape, v); err != nil {
			t.Fatal(err)
		}
	}
	open := func(g string) *runtime.Session {
		s, err := runtime.NewSession(filepath.Join(dir, man.Graphs[g].File), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Destroy() })
		return s
	}
	dec, lp := open(manifest.GraphDecode), open(manifest.GraphLogprobs)
	B, S, V := len(inputIDs), len(inputIDs[0]), int(man.Model.Vocab)
	out := []safetensors.Tensor{safetensors.FromInt64("input_ids", []int64{int64(B), int64(S)}, slices.Concat(inputIDs...))}
	for k, role := range roles {
		logits := make([]float32, B*S*V)
		for n := 1; n <= S; n++ {
			in := map[string]*runtime.Tensor{}
			for name, x := range adapterFeeds {
				in[name] = x
			}
			prefix := make([][]int64, B)
			for b := range prefix {
				prefix[b] = inputIDs[b][:n]
			}
			in["input_ids"] = ints(t, prefix)
			in["attention_mask"] = ints(t, fill(n, func(int) int64 { return 1 }))
			in["position_ids"] = ints(t, fill(n, func(p int) int64 { return int64(p) }))
			in[man.LoRA.RoleInput] = ints(t, fill(n, func(int) int64 { return int64(k) }))
			for _, c := range man.Model.Cache {
				in[c.PastKey] = runtime.NewTensor(runtime.Float32, int64(B), man.Model.KVHeads, 0, man.Model.HeadDim)
				in[c.PastValue] = runtime.NewTensor(runtime.Float32, int64(B), man.Model.KVHeads, 0, man.Model.HeadDim)
			}
			runtime.AddGreedySamplerFeeds(dec, in)
			res, err := dec.Run(in, "logits")
			if err != nil {
				t.Fatal(err)
			}
			last := res["logits"].Float32()
			for b := range B {
				copy(logits[(b*S+n-1)*V:(b*S+n)*V], last[b*V:(b+1)*V])
			}
		}
		out = append(out, safetensors.FromFloat32("logits."+role, []int64{int64(B), int64(S), int64(V)}, logits))

		in := map[string]*runtime.Tensor{}
		for name, x := range adapterFeeds {
			in[name] = x
		}
		in["input_ids"] = ints(t, inputIDs)
		in["attention_mask"] = ints(t, fill(S, func(int) int64 { return 1 }))
		in["position_ids"] = ints(t, fill(S, func(p int) int64 { return int64(p) }))
		in[man.LoRA.RoleInput] = ints(t, fill(S, func(int) int64 { return int64(k) }))
		res, err := lp.Run(in, "logprobs")
		if err != nil {
			t.Fatal(err)
		}
		all := res["logprobs"].Float32() // [B, S]: position S−1 predicts nothing
		var next []float32
		for b := range B {
			next = append(next, all[b*S:b*S+S-1]...)
		}
		out = append(out, safetensors.FromFloat32("logprobs."+role, []int64{int64(B), int64(S - 1)}, next))
	}
	return out
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// result is the part of result.json the Go side reads.
type result struct {
	Passed    bool              `json:"passed"`
	Tolerance float64           `json:"tolerance"`
	Inputs    map[string]string `json:"inputs_sha256"`
	Roles     map[string]struct {
		LogitsMaxAbsDiff   float64 `json:"logits_max_abs_diff"`
		LogprobsMaxAbsDiff float64 `json:"logprobs_max_abs_diff"`
		AdapterEffect      float64 `json:"adapter_effect_max_abs"`
		Positions          int     `json:"positions"`
	} `json:"roles"`
}

// TestPEFTRoundTrip (issue 8, must-show 4): the committed result of
// check_peft.py says HF PEFT reproduced dartc's logits for every position
// of each role from the committed inputs, and those inputs are what dartc
// writes and computes today.
func TestPEFTRoundTrip(t *testing.T) {
	orttest.Init(t)
	dir, man := compile(t)
	if *update {
		os.RemoveAll(testdata)
		if err := os.MkdirAll(testdata, 0o755); err != nil {
			t.Fatal(err)
		}
		writeAdapters(t, man, filepath.Join(testdata, adapters))
		for _, role := range roles {
			if err := peft.Export(filepath.Join(testdata, adapters), role, filepath.Join(testdata, "peft-"+role)); err != nil {
				t.Fatal(err)
			}
		}
		if err := safetensors.Write(filepath.Join(testdata, outputs), dartcOutputs(t, dir, man, filepath.Join(testdata, adapters)), nil); err != nil {
			t.Fatal(err)
		}
		t.Log("testdata rewritten: now run models/export/.venv/bin/python peft/roundtrip/check_peft.py")
		return
	}

	t.Run("result", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(testdata, resultFile))
		if err != nil {
			t.Fatalf("%v: run check_peft.py (see doc.go)", err)
		}
		var r result
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if !r.Passed || !(r.Tolerance > 0 && r.Tolerance <= 1e-4) {
			t.Fatalf("result.json: passed %v with tolerance %g", r.Passed, r.Tolerance)
		}
		for _, role := range roles {
			rr, ok := r.Roles[role]
			if !ok {
				t.Fatalf("result.json has no role %s", role)
			}
			t.Logf("%s: PEFT vs dartc max |Δlogit| %.2g, max |Δlogp| %.2g over %d positions; the adapter moves logits by up to %.2g",
				role, rr.LogitsMaxAbsDiff, rr.LogprobsMaxAbsDiff, rr.Positions, rr.AdapterEffect)
			if rr.Positions != len(inputIDs)*len(inputIDs[0]) || rr.LogitsMaxAbsDiff > r.Tolerance || rr.LogprobsMaxAbsDiff > r.Tolerance || rr.AdapterEffect < 100*r.Tolerance {
				t.Fatalf("result.json role %s does not show a round trip: %+v", role, rr)
			}
		}
		files := []string{adapters, outputs}
		for _, role := range roles {
			files = append(files, "peft-"+role+"/"+peft.ConfigFile, "peft-"+role+"/"+peft.WeightsFile)
		}
		for _, f := range files {
			if got := sha(t, filepath.Join(testdata, f)); r.Inputs[f] != got {
				t.Errorf("result.json was made from %s with sha256 %q, the committed file has %s: rerun check_peft.py", f, r.Inputs[f], got)
			}
		}
	})

	t.Run("export", func(t *testing.T) {
		src, err := safetensors.Read(filepath.Join(testdata, adapters))
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range roles {
			out := filepath.Join(t.TempDir(), "peft-"+role)
			if err := peft.Export(filepath.Join(testdata, adapters), role, out); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{peft.ConfigFile, peft.WeightsFile} {
				got, _ := os.ReadFile(filepath.Join(out, f))
				want, err := os.ReadFile(filepath.Join(testdata, "peft-"+role, f))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s/%s: export-peft writes different bytes today than the committed file", role, f)
				}
			}
			checkLayout(t, src, filepath.Join(testdata, "peft-"+role), role, man)
		}
	})

	t.Run("dartc", func(t *testing.T) {
		committed, err := safetensors.Read(filepath.Join(testdata, outputs))
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for _, x := range dartcOutputs(t, dir, man, filepath.Join(testdata, adapters)) {
			c, err := committed.Get(x.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Shape, x.Shape) {
				t.Fatalf("%s: committed shape %v, today %v", x.Name, c.Shape, x.Shape)
			}
			if x.DType == safetensors.I64 {
				if !bytes.Equal(c.Data, x.Data) {
					t.Fatalf("%s differs from the committed one", x.Name)
				}
				continue
			}
			a, _ := x.Float32s()
			b, _ := c.Float32s()
			for i := range a {
				worst = math.Max(worst, math.Abs(float64(a[i])-float64(b[i])))
			}
		}
		t.Logf("dartc outputs today vs committed: max abs diff %.2g", worst)
		if worst > 1e-5 {
			t.Fatalf("the compiled model's outputs moved by %.3g from the committed ones: rerun -update and check_peft.py", worst)
		}
	})
}

// checkLayout checks an exported directory against the dual file: one
// lora_A [r, in] and lora_B [out, r] F32 tensor per target module under
// PEFT's keys, holding the dual tensors transposed, and a config PEFT
// reads as rank 4, alpha 8 over the seven projection kinds.
func checkLayout(t *testing.T, src *safetensors.File, dir, role string, man *manifest.Manifest) {
	t.Helper()
	f, err := safetensors.Read(filepath.Join(dir, peft.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != 2*len(man.LoRA.Targets) {
		t.Fatalf("%s: %d tensors, want %d", dir, len(f.Tensors), 2*len(man.LoRA.Targets))
	}
	for _, tg := range man.LoRA.Targets {
		for _, m := range []struct {
			matrix, dual string
			shape        []int64
		}{{"A", tg.A[role], []int64{rank, tg.In}}, {"B", tg.B[role], []int64{tg.Out, rank}}} {
			key := "base_model.model." + tg.Module + ".lora_" + m.matrix + ".weight"
			x, err := f.Get(key)
			if err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
			if x.DType != safetensors.F32 || !slices.Equal(x.Shape, m.shape) {
				t.Fatalf("%s: %s is %s %v, want F32 %v", dir, key, x.DType, x.Shape, m.shape)
			}
			d, _ := src.Get(m.dual)
			dv, _ := d.Float32s()
			xv, _ := x.Float32s()
			rows, cols := int(d.Shape[0]), int(d.Shape[1])
			for i := range rows {
				for j := range cols {
					if xv[j*rows+i] != dv[i*cols+j] {
						t.Fatalf("%s: %s[%d,%d] is not %s[%d,%d]", dir, key, j, i, m.dual, i, j)
					}
				}
			}
		}
	}
	var cfg struct {
		R             int      `json:"r"`
		LoraAlpha     float64  `json:"lora_alpha"`
		PeftType      string   `json:"peft_type"`
		TargetModules []string `json:"target_modules"`
	}
	b, err := os.ReadFile(filepath.Join(dir, peft.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}
	if cfg.R != rank || cfg.LoraAlpha != alpha || cfg.PeftType != "LORA" || !slices.Equal(cfg.TargetModules, want) {
		t.Fatalf("%s: config %+v", dir, cfg)
	}
}
