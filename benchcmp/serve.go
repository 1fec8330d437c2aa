package benchcmp

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
)

// dartcWorker is the dartc side: the compiled graphs run by ONNX Runtime
// through package runtime, with the session options the GRPO trainer uses.
type dartcWorker struct {
	dir      string
	man      *manifest.Manifest
	threads  int
	adapters map[string]*runtime.Tensor
	batches  map[string]map[string]*runtime.Tensor
	graph    string
	sess     *runtime.Session
}

// Serve runs the dartc worker: requests from r, answers to w, until quit
// or the end of r. Errors of a request are answered (ok false); only a
// failure to write an answer ends Serve with an error.
func Serve(r io.Reader, w io.Writer) error {
	d := &dartcWorker{batches: map[string]map[string]*runtime.Tensor{}}
	defer d.closeSession()
	in := bufio.NewReaderSize(r, 1<<20)
	enc := json.NewEncoder(w)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) == 0 {
			if err != nil {
				return nil
			}
			continue
		}
		var req Request
		var ans map[string]any
		if jerr := json.Unmarshal(line, &req); jerr != nil {
			ans = map[string]any{"ok": false, "error": fmt.Sprintf("not a JSON request: %v", jerr)}
		} else if req.Op == OpQuit {
			return enc.Encode(map[string]any{"ok": true})
		} else {
			ans, err = d.handle(req)
			if err != nil {
				ans = map[string]any{"ok": false, "error": err.Error()}
			} else {
				ans["ok"] = true
				if v, err := RSSKiB(); err == nil {
					ans["rss_kib"] = v
				}
				if v, err := PeakRSSKiB(); err == nil {
					ans["peak_rss_kib"] = v
				}
			}
		}
		if werr := enc.Encode(ans); werr != nil {
			return werr
		}
	}
}

func (d *dartcWorker) handle(req Request) (map[string]any, error) {
	switch req.Op {
	case OpLoad:
		return d.load(req)
	case OpPrepare:
		return d.prepare(req.Graph)
	case OpBatch:
		return d.batch(req)
	case OpTrain, OpLogprobs:
		return d.step(req)
	case OpResetPeak:
		return map[string]any{}, ResetPeakRSS()
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

func (d *dartcWorker) load(req Request) (map[string]any, error) {
	if req.Model == "" {
		return nil, errors.New("load: no model (the compiled directory)")
	}
	lib, err := runtime.Init()
	if err != nil {
		return nil, err
	}
	man, err := manifest.Read(req.Model)
	if err != nil {
		return nil, err
	}
	d.dir, d.man, d.threads = req.Model, man, req.Threads
	if d.adapters, err = initialAdapters(man, req.Seed); err != nil {
		return nil, err
	}
	return map[string]any{"side": "dartc", "onnxruntime": runtime.Version(), "library": lib, "threads": req.Threads,
		"rank": man.LoRA.Rank, "alpha": man.LoRA.Alpha, "roles": man.LoRA.Roles, "targets": len(man.LoRA.Targets),
		"head_chunk": man.HeadChunk, "lora": fmt.Sprintf("dartc dual gated LoRA (%d roles)", len(man.LoRA.Roles))}, nil
}

// initialAdapters draws every role's A from N(0, 1/in) and sets B = 0, as
// PEFT initializes its LoRA (up to A's distribution): the adapters add
// nothing yet, so both sides start from the same function.
func initialAdapters(man *manifest.Manifest, seed uint64) (map[string]*runtime.Tensor, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6164617074))
	out := map[string]*runtime.Tensor{}
	r := int64(man.LoRA.Rank)
	for _, tg := range man.LoRA.Targets {
		for _, role := range man.LoRA.Roles {
			a := make([]float32, tg.In*r)
			for i := range a {
				a[i] = float32(rng.NormFloat64() / math.Sqrt(float64(tg.In)))
			}
			ta, err := runtime.FromFloat32([]int64{tg.In, r}, a)
			if err != nil {
				return nil, err
			}
			tb, err := runtime.FromFloat32([]int64{r, tg.Out}, make([]float32, r*tg.Out))
			if err != nil {
				return nil, err
			}
			out[tg.A[role]], out[tg.B[role]] = ta, tb
		}
	}
	return out, nil
}

func (d *dartcWorker) closeSession() {
	if d.sess != nil {
		d.sess.Destroy()
		d.sess, d.graph = nil, ""
	}
}

// prepare opens graph's session (closing the one open), with the options
// the GRPO trainer opens it with (runtime.ForGraph).
func (d *dartcWorker) prepare(graph string) (map[string]any, error) {
	if d.man == nil {
		return nil, errors.New("prepare: no model: send load first")
	}
	spec := d.man.Graphs[graph]
	if spec == nil || (graph != manifest.GraphTrain && graph != manifest.GraphLogprobs) {
		return nil, fmt.Errorf("prepare: graph %q: want train or logprobs (the compiled directory has %v)", graph, graphNames(d.man))
	}
	d.closeSession()
	start := time.Now()
	so, err := runtime.ForGraph(spec, runtime.Options{IntraOpThreads: d.threads})
	if err != nil {
		return nil, err
	}
	s, err := runtime.NewSession(filepath.Join(d.dir, spec.File), so)
	if err != nil {
		return nil, err
	}
	d.sess, d.graph = s, graph
	return map[string]any{"seconds": time.Since(start).Seconds()}, nil
}

func graphNames(man *manifest.Manifest) []string {
	var out []string
	for k := range man.Graphs {
		out = append(out, k)
	}
	return out
}

func (d *dartcWorker) batch(req Request) (map[string]any, error) {
	if d.man == nil {
		return nil, errors.New("batch: no model: send load first")
	}
	if req.Batch == nil || req.Name == "" {
		return nil, errors.New("batch: needs a name and the batch")
	}
	b := req.Batch
	if err := b.Validate(d.man.Model.Vocab); err != nil {
		return nil, err
	}
	sh := []int64{int64(b.Rows), int64(b.Seq)}
	feeds := map[string]*runtime.Tensor{}
	var err error
	i64 := func(name string, v []int64) {
		if err == nil {
			feeds[name], err = runtime.FromInt64(sh, append([]int64(nil), v...))
		}
	}
	f32 := func(name string, shape []int64, v []float32) {
		if err == nil {
			feeds[name], err = runtime.FromFloat32(shape, append([]float32(nil), v...))
		}
	}
	i64("input_ids", b.InputIDs)
	i64("attention_mask", b.AttentionMask)
	i64("position_ids", b.PositionIDs)
	i64(d.man.LoRA.RoleInput, b.RoleIDs)
	f32(passes.TokenWeightsInput, sh, b.TokenWeights)
	f32(passes.AdvantagesInput, sh, b.Advantages)
	f32(passes.OldLogprobsInput, sh, b.OldLogprobs)
	f32(passes.RefLogprobsInput, sh, b.RefLogprobs)
	f32(passes.ClipLowInput, nil, []float32{b.ClipLow})
	f32(passes.ClipHighInput, nil, []float32{b.ClipHigh})
	f32(passes.KLCoefInput, nil, []float32{b.KLCoef})
	f32(passes.EntropyCoefInput, nil, []float32{b.EntropyCoeff})
	if d.man.Graphs[manifest.GraphTrain].Input(passes.LossScaleInput) != nil { // float16 graphs
		f32(passes.LossScaleInput, nil, []float32{1})
	}
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	d.batches[req.Name] = feeds
	return map[string]any{}, nil
}

// step runs the open session on a stored batch, feeding the inputs the
// graph has (the batch's, then the adapters).
func (d *dartcWorker) step(req Request) (map[string]any, error) {
	if d.sess == nil || d.graph != req.Op {
		return nil, fmt.Errorf("%s: no %s session: send prepare with graph %q first", req.Op, req.Op, req.Op)
	}
	b := d.batches[req.Name]
	if b == nil {
		return nil, fmt.Errorf("%s: no batch named %q: send batch first", req.Op, req.Name)
	}
	in := map[string]*runtime.Tensor{}
	for _, io := range d.sess.Inputs() {
		t := b[io.Name]
		if t == nil {
			t = d.adapters[io.Name]
		}
		if t == nil {
			return nil, fmt.Errorf("%s: %s has an input %q this worker does not know", req.Op, d.sess.Path(), io.Name)
		}
		in[io.Name] = t
	}
	start := time.Now()
	out, err := d.sess.Run(in)
	sec := time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}
	ans := map[string]any{"seconds": sec}
	if req.Op == OpTrain {
		loss := out[passes.LossOutput]
		if loss == nil {
			return nil, fmt.Errorf("train: %s has no %q output", d.sess.Path(), passes.LossOutput)
		}
		ans["loss"] = loss.Floats()[0]
		if req.GradNorm {
			sq := 0.0
			for name, t := range out {
				if strings.HasPrefix(name, passes.GradPrefix) {
					for _, v := range t.Floats() {
						sq += v * v
					}
				}
			}
			ans["grad_norm"] = math.Sqrt(sq)
		}
	} else if req.Values {
		lp := out[passes.LogprobsOutput]
		if lp == nil {
			return nil, fmt.Errorf("logprobs: %s has no %q output", d.sess.Path(), passes.LogprobsOutput)
		}
		ans["logprobs"] = lp.Floats()
	}
	return ans, nil
}
