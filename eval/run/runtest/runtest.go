package runtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/grpo"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/peft"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/safetensors"
)

// Rank and Alpha of the compiled fixture.
const Rank, Alpha = 4, 8

// Fixture names the files of the shared fixture.
type Fixture struct {
	Root     string // everything below lives here
	Model    string // `dartc compile` output: decode, logprobs, train, adamw
	Manifest *manifest.Manifest
	Index    string // BM25 index of data/demo/corpus.jsonl
	// Adapters maps "reason", "tool" and "unified" to single-adapter files
	// in the dual layout (the same random tensors in both slots), standing
	// in for M_Reas, M_Tool and M_Unified.
	Adapters map[string]string
	// Data is the repository's data/demo directory (nq_test.jsonl,
	// bamboogle.jsonl, hotpotqa_val.jsonl).
	Data string
}

var (
	mu  sync.Mutex
	fix Fixture
)

// Get builds the fixture on first use, or after a Cleanup (ORT must be
// initialized: Get calls orttest.Init).
func Get(tb testing.TB) Fixture {
	tb.Helper()
	orttest.Init(tb)
	mu.Lock()
	defer mu.Unlock()
	if fix.Root == "" {
		f, err := build()
		if err != nil {
			tb.Fatal(err)
		}
		fix = f
	}
	return fix
}

// Cleanup removes the fixture's files, if built; the next Get builds it
// again.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if fix.Root != "" {
		os.RemoveAll(fix.Root)
	}
	fix = Fixture{}
}

// repoRoot finds the module root from this source file's directory.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("runtest: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", ".."), nil
}

func build() (Fixture, error) {
	root, err := repoRoot()
	if err != nil {
		return Fixture{}, err
	}
	dir, err := os.MkdirTemp("", "dartc-evalrun-")
	if err != nil {
		return Fixture{}, err
	}
	f := Fixture{Root: dir, Model: filepath.Join(dir, "compiled"), Index: filepath.Join(dir, "hotpotqa.bm25"),
		Adapters: map[string]string{}, Data: filepath.Join(root, "data", "demo")}
	cfg, _ := qwen2.Preset("tiny")
	cfg.Vocab = 151936
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Seed: 11})
	if err != nil {
		return Fixture{}, fmt.Errorf("runtest: %w", err)
	}
	if f.Manifest, err = compiler.Compile(res.ModelPath, f.Model, compiler.Options{Rank: Rank, Alpha: Alpha, Seed: 1}); err != nil {
		return Fixture{}, fmt.Errorf("runtest: %w", err)
	}
	for i, name := range []string{"reason", "tool", "unified"} {
		path := filepath.Join(dir, name+".safetensors")
		grad := map[string]string{"reason": grpo.GradReason, "tool": grpo.GradTool, "unified": grpo.GradAll}[name]
		if err := WriteSingleAdapter(path, f.Manifest, uint64(100+i), 0.2, grad); err != nil {
			return Fixture{}, err
		}
		f.Adapters[name] = path
	}
	src, err := os.Open(filepath.Join(f.Data, "corpus.jsonl"))
	if err != nil {
		return Fixture{}, fmt.Errorf("runtest: %w", err)
	}
	defer src.Close()
	format, err := corpus.ParseFormat("title-text")
	if err != nil {
		return Fixture{}, fmt.Errorf("runtest: %w", err)
	}
	rows, err := corpus.NewReader(src, format)
	if err != nil {
		return Fixture{}, fmt.Errorf("runtest: %w", err)
	}
	if _, err := bm25.Build(context.Background(), rows, f.Index, bm25.DefaultParams); err != nil {
		return Fixture{}, fmt.Errorf("runtest: %w", err)
	}
	return f, nil
}

// WriteSingleAdapter writes a single adapter in the dual layout: for every
// target, A and B drawn N(0, std²) from seed, the same tensors in every
// role slot, with dartc's adapter metadata and the training metadata of a
// `dartc train --variant single --grad-tokens gradTokens` checkpoint.
func WriteSingleAdapter(path string, m *manifest.Manifest, seed uint64, std float64, gradTokens string) error {
	rng := rand.New(rand.NewPCG(seed, seed))
	var ts []safetensors.Tensor
	for _, tg := range m.LoRA.Targets {
		for _, ab := range []struct {
			names map[string]string
			shape []int64
		}{{tg.A, []int64{tg.In, int64(m.LoRA.Rank)}}, {tg.B, []int64{int64(m.LoRA.Rank), tg.Out}}} {
			v := make([]float32, ab.shape[0]*ab.shape[1])
			for i := range v {
				v[i] = float32(rng.NormFloat64() * std)
			}
			for _, role := range m.LoRA.Roles {
				ts = append(ts, safetensors.FromFloat32(ab.names[role], ab.shape, v))
			}
		}
	}
	meta := map[string]string{peft.MetaRank: fmt.Sprint(m.LoRA.Rank), peft.MetaAlpha: fmt.Sprint(m.LoRA.Alpha),
		peft.MetaRoles: strings.Join(m.LoRA.Roles, ","), peft.MetaBaseModel: "runtest tiny qwen2",
		grpo.MetaVariant: grpo.VariantSingle, grpo.MetaGradTokens: gradTokens}
	if err := safetensors.Write(path, ts, meta); err != nil {
		return fmt.Errorf("runtest: %w", err)
	}
	return nil
}

// WriteFiles writes name → content under dir (names may hold folders) and
// returns files.
func WriteFiles(tb testing.TB, dir string, files map[string]string) map[string]string {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return files
}

// Files returns every file under dir, by relative path, with its content:
// what a test compares to show a folder was left as it was.
func Files(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[rel] = string(b)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return got
}
