package compiler_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
)

// TestBlockCausalAttentionMatchesFullSquare: logprobs.onnx and train.onnx
// with the attention cut into query blocks compute what the full [seq, seq]
// square computes — log-probs at every real position, the loss and every
// adapter gradient — at lengths shorter than the block count (empty
// blocks), not divisible by it, and longer, with a left-padded row (its
// padding queries see no key) and both roles mixed within rows. Both
// export forms; three and four blocks. The tiny preset's attention is
// grouped-query (two query heads per kv head), so this also checks the
// grouped blocks against the exporter's repeated keys and values.
func TestBlockCausalAttentionMatchesFullSquare(t *testing.T) {
	orttest.Init(t)
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []synth.LinearForm{synth.TorchScript, synth.Dynamo} {
		t.Run(form.String(), func(t *testing.T) {
			dir := t.TempDir()
			res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{Seed: 9, LinearForm: form})
			if err != nil {
				t.Fatal(err)
			}
			compile := func(blocks int) (string, *manifest.Manifest) {
				out := filepath.Join(dir, fmt.Sprintf("blocks%d", blocks))
				man, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 4, Alpha: 8, Check: true,
					AttentionBlocks: blocks, Graphs: []string{"decode", "logprobs", "train"}})
				if err != nil {
					t.Fatal(err)
				}
				return out, man
			}
			full, man := compile(1)
			for _, blocks := range []int{3, 4} {
				out, _ := compile(blocks)
				if got := countOps(t, filepath.Join(out, "train.onnx"), "Softmax", "/blocks/"); got != blocks*cfg.Layers {
					t.Fatalf("%d blocks: train.onnx has %d blocked Softmax nodes, want %d per layer", blocks, got, blocks)
				}
				// The tiny preset has 2 query heads per kv head: the blocks
				// multiply each group's queries against its kv head's keys.
				if got := countOps(t, filepath.Join(out, "logprobs.onnx"), "Reshape", "/q/groups"); got != blocks*cfg.Layers {
					t.Fatalf("%d blocks: logprobs.onnx has %d grouped query views, want %d per layer", blocks, got, blocks)
				}
				compareCompiles(t, man, full, out, compileComparison{ref: "full square", got: fmt.Sprintf("%d blocks", blocks),
					seqs: []int{1, 2, 3, 5, 7, 16, 21}, seed: 11 + uint64(blocks)})
			}
		})
	}
}

// compileComparison names what compareCompiles compares and on what.
type compileComparison struct {
	ref, got string // the two compiles, as the failures name them
	seqs     []int  // batch lengths
	seed     uint64
	nonzero  bool // every compared train output must be nonzero (no length leaves the loss empty)
}

// compareCompiles runs two compiles of one model, logprobs.onnx and
// train.onnx, on batches of each length (roles mixed within rows, a
// left-padded row, random adapters of every role) and fails on the first
// log-prob, loss or adapter gradient that differs beyond float32
// reordering (1e-5 of the output's largest magnitude).
func compareCompiles(t *testing.T, man *manifest.Manifest, refDir, gotDir string, c compileComparison) {
	t.Helper()
	sessions := func(dir string) (lp, tr *runtime.Session) {
		return session(t, filepath.Join(dir, "logprobs.onnx")), session(t, filepath.Join(dir, "train.onnx"))
	}
	lpR, trR := sessions(refDir)
	lpG, trG := sessions(gotDir)
	rng := rand.New(rand.NewPCG(c.seed, 1))
	for _, seq := range c.seqs {
		bt := newBatch(rng, man.Model.Vocab, seq, func(i int) int64 { return int64(i/3) % 2 })
		adapters := randomAdapters(t, man, rng, man.LoRA.Roles...)
		feeds := func(loss bool) map[string]*runtime.Tensor {
			in := bt.feeds(t)
			for k, v := range adapters {
				in[k] = v
			}
			if loss {
				bt.lossFeeds(t, rand.New(rand.NewPCG(c.seed+2, uint64(seq))), in)
			}
			return in
		}
		where := fmt.Sprintf("%s against %s, %d tokens", c.got, c.ref, seq)
		want, got := run(t, lpR, feeds(false))["logprobs"].Floats(), run(t, lpG, feeds(false))["logprobs"].Floats()
		for i := range want {
			if bt.mask[i] == 1 && !closeTo(got[i], want[i], 1e-5) {
				t.Fatalf("%s: log-prob %d: %g, want %g", where, i, got[i], want[i])
			}
		}
		wantT, gotT := run(t, trR, feeds(true)), run(t, trG, feeds(true))
		checked := 0
		for name, w := range wantT {
			if name != passes.LossOutput && !strings.HasPrefix(name, passes.GradPrefix) {
				continue
			}
			wv, gv := w.Floats(), gotT[name].Floats()
			scale := 0.0
			for _, x := range wv {
				scale = math.Max(scale, math.Abs(x))
			}
			if scale == 0 && c.nonzero {
				t.Fatalf("%s: %s is zero: the comparison would show nothing", where, name)
			}
			for i := range wv {
				if math.Abs(gv[i]-wv[i]) > 1e-5*math.Max(scale, 1e-3) {
					t.Fatalf("%s: %s[%d]: %g, want %g (largest |value| %g)", where, name, i, gv[i], wv[i], scale)
				}
			}
			checked++
		}
		if want := 1 + 2*len(man.LoRA.Roles)*len(man.LoRA.Targets); checked != want {
			t.Fatalf("%s: compared %d train outputs, want the loss and the %d adapter gradients", where, checked, want-1)
		}
	}
}

func closeTo(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// countOps counts the nodes of type op whose name contains part.
func countOps(t *testing.T, path, op, part string) int {
	t.Helper()
	m, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range m.Graph.Nodes {
		if x.OpType == op && strings.Contains(x.Name, part) {
			n++
		}
	}
	return n
}
