package gradcheck

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/runtime"
)

// ParityOptions configure a CPU-versus-device comparison. A zero field
// takes its default; a negative one is refused.
type ParityOptions struct {
	Device      string // the device compared with the CPU ("cuda")
	Seed        uint64
	Batch       int // sequences (default 2)
	SeqLen      int // tokens per sequence, at least 2 (default 16)
	DecodeSteps int // greedy decode steps (default 16; ignored with NoDecode)
	NoDecode    bool
	Threads     int // intra-op threads per session (0: ONNX Runtime's default)
}

// check refuses values that have no meaning; zeros stay for the defaults.
func (o ParityOptions) check() error {
	switch {
	case o.Batch < 0:
		return fmt.Errorf("gradcheck: parity: batch %d: want at least 1 sequence (0: the default 2)", o.Batch)
	case o.SeqLen < 0 || o.SeqLen == 1:
		// Decoding starts from the first half of each sequence, at
		// least 2 tokens of it.
		return fmt.Errorf("gradcheck: parity: sequence length %d: want at least 2 tokens (0: the default 16)", o.SeqLen)
	case o.DecodeSteps < 0:
		return fmt.Errorf("gradcheck: parity: %d decode steps: want at least 1 (0: the default 16; NoDecode skips decoding)", o.DecodeSteps)
	case o.Threads < 0:
		return fmt.Errorf("gradcheck: parity: %d threads: want at least 1 (0: ONNX Runtime's default)", o.Threads)
	}
	return nil
}

// Diff is the largest difference between the CPU's and the device's values
// of one output: Abs = max |cpu − dev|, Rel = Abs / max |cpu|.
type Diff struct {
	Name     string
	Abs, Rel float64
	N        int // values compared
}

// ParityResult compares each graph's outputs on the CPU and on the device.
type ParityResult struct {
	DType string
	// Logprobs is logprobs.onnx's output; Loss and Grads train.onnx's
	// (Grads: the worst adapter tensor, by relative difference).
	Logprobs, Loss, Grads Diff
	// Decode compares greedy decoding: the log-probs of the tokens both
	// devices chose, over the steps before the first differing token.
	Decode Diff
	// DecodeSame counts the generated tokens of the common prefixes of
	// each row (equal on both devices), of DecodeTotal on the CPU.
	DecodeSame, DecodeTotal int
	// The sizes the comparison ran with, defaults filled in (DecodeSteps
	// 0: no decode comparison): what to report, rather than the options
	// asked for.
	Batch, SeqLen, DecodeSteps int
}

// Worst returns the largest relative difference over the graphs.
func (r *ParityResult) Worst() float64 {
	return max(r.Logprobs.Rel, r.Loss.Rel, r.Grads.Rel, r.Decode.Rel)
}

func diff(name string, cpu, dev []float64) Diff {
	d := Diff{Name: name, N: len(cpu)}
	scale := 0.0
	for i := range cpu {
		scale = math.Max(scale, math.Abs(cpu[i]))
		e := math.Abs(cpu[i] - dev[i])
		if math.IsNaN(e) {
			e = math.Inf(1)
		}
		d.Abs = math.Max(d.Abs, e)
	}
	if scale > 0 {
		d.Rel = d.Abs / scale
	} else if d.Abs > 0 {
		d.Rel = math.Inf(1)
	}
	return d
}

// Parity runs logprobs.onnx, train.onnx and greedy decoding of the compiled
// directory dir on the CPU and on opts.Device with the same random inputs
// and adapters (those of Run), and reports the largest differences. With
// Device "cpu" both sides run on the CPU: a dry run of the comparison.
func Parity(dir string, opts ParityOptions) (*ParityResult, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	man, err := manifest.Read(dir)
	if err != nil {
		return nil, err
	}
	train, lpg := man.Graphs[manifest.GraphTrain], man.Graphs[manifest.GraphLogprobs]
	if train == nil || lpg == nil {
		return nil, fmt.Errorf("gradcheck: parity: %s lacks the train or logprobs graph; compile without --graphs", dir)
	}
	if opts.Batch == 0 {
		opts.Batch = 2
	}
	if opts.SeqLen == 0 {
		opts.SeqLen = 16
	}
	if opts.DecodeSteps == 0 {
		opts.DecodeSteps = 16
	}
	dt := train.Output("loss").DType
	rng := rand.New(rand.NewPCG(opts.Seed, 0x51a7e))
	feeds, err := randomInputs(man, rng, opts.Batch, opts.SeqLen, dt)
	if err != nil {
		return nil, err
	}
	res := &ParityResult{DType: dt, Batch: opts.Batch, SeqLen: opts.SeqLen}
	threads := opts.Threads
	run := func(device string) (lp, loss []float64, grads map[string][]float64, err error) {
		o := &runtime.Options{Device: device, IntraOpThreads: threads}
		lo := *o
		lo.Config = lpg.SessionConfig
		ls, err := runtime.NewSession(filepath.Join(dir, lpg.File), &lo)
		if err != nil {
			return nil, nil, nil, err
		}
		defer ls.Destroy()
		in := map[string]*runtime.Tensor{}
		for _, io := range ls.Inputs() {
			in[io.Name] = feeds[io.Name]
		}
		out, err := ls.Run(in, "logprobs")
		if err != nil {
			return nil, nil, nil, err
		}
		lp = out["logprobs"].Floats()
		to := *o
		to.Config = train.SessionConfig
		ts, err := runtime.NewSession(filepath.Join(dir, train.File), &to)
		if err != nil {
			return nil, nil, nil, err
		}
		defer ts.Destroy()
		tout, err := ts.Run(feeds)
		if err != nil {
			return nil, nil, nil, err
		}
		grads = map[string][]float64{}
		for _, n := range man.AdapterNames() {
			grads[n] = tout["grad."+n].Floats()
		}
		return lp, tout["loss"].Floats(), grads, nil
	}
	// Old and reference log-probs near the policy's, as Run draws them.
	cpuLP, _, _, err := run(runtime.DeviceCPU)
	if err != nil {
		return nil, fmt.Errorf("gradcheck: parity on the cpu: %w", err)
	}
	old, ref := make([]float64, len(cpuLP)), make([]float64, len(cpuLP))
	for i, v := range cpuLP {
		old[i] = v + 0.05*(2*rng.Float64()-1)
		ref[i] = v + 0.3*(2*rng.Float64()-1)
	}
	shape := []int64{int64(opts.Batch), int64(opts.SeqLen)}
	if feeds["old_logprobs"], err = floats(dt, shape, old); err != nil {
		return nil, err
	}
	if feeds["ref_logprobs"], err = floats(dt, shape, ref); err != nil {
		return nil, err
	}
	cpuLP, cpuLoss, cpuGrads, err := run(runtime.DeviceCPU)
	if err != nil {
		return nil, fmt.Errorf("gradcheck: parity on the cpu: %w", err)
	}
	devLP, devLoss, devGrads, err := run(opts.Device)
	if err != nil {
		return nil, fmt.Errorf("gradcheck: parity on %s: %w", opts.Device, err)
	}
	res.Logprobs = diff("logprobs", cpuLP, devLP)
	res.Loss = diff("loss", cpuLoss, devLoss)
	names := man.AdapterNames()
	sort.Strings(names)
	for _, n := range names {
		if d := diff("grad."+n, cpuGrads[n], devGrads[n]); d.Rel >= res.Grads.Rel {
			res.Grads = d
		}
	}
	if opts.NoDecode || man.Graphs[manifest.GraphDecode] == nil {
		return res, nil
	}
	if err := decodeParity(dir, man, feeds, opts, threads, res); err != nil {
		return nil, err
	}
	res.DecodeSteps = opts.DecodeSteps
	return res, nil
}

// decodeParity decodes greedily on both devices from prompts taken from
// the random sequences, with the same adapters: on the CPU with host
// tensors, on the device with the resident decoder the agent's rollouts
// use (adapters and KV cache kept on the device).
func decodeParity(dir string, man *manifest.Manifest, feeds map[string]*runtime.Tensor, opts ParityOptions, threads int, res *ParityResult) error {
	ids := feeds["input_ids"].Int64()
	var prompts [][]int64
	for r := range opts.Batch {
		n := max(2, opts.SeqLen/2)
		prompts = append(prompts, append([]int64(nil), ids[r*opts.SeqLen:r*opts.SeqLen+n]...))
	}
	gen := func(device string, resident bool) ([]runtime.Sequence, error) {
		spec, err := runtime.ManifestDecoderSpec(dir, &runtime.Options{Device: device, IntraOpThreads: threads})
		if err != nil {
			return nil, err
		}
		spec.Resident = resident
		dec, err := runtime.NewDecoder(spec)
		if err != nil {
			return nil, err
		}
		defer dec.Destroy()
		static := map[string]*runtime.Tensor{}
		for _, io := range dec.StaticInputs() {
			t := feeds[io.Name]
			if t == nil || t.DType() != io.DType {
				return nil, fmt.Errorf("decode input %v has no matching train adapter", io)
			}
			static[io.Name] = t
		}
		seqs, _, err := dec.Generate(context.Background(), prompts, runtime.GenerateConfig{MaxNewTokens: opts.DecodeSteps, Inputs: static})
		return seqs, err
	}
	cpu, err := gen(runtime.DeviceCPU, false)
	if err != nil {
		return fmt.Errorf("gradcheck: decode on the cpu: %w", err)
	}
	dev, err := gen(opts.Device, true)
	if err != nil {
		return fmt.Errorf("gradcheck: decode on %s: %w", opts.Device, err)
	}
	var a, b []float64
	for r := range cpu {
		res.DecodeTotal += len(cpu[r].Tokens)
		for i := range cpu[r].Tokens {
			if i >= len(dev[r].Tokens) || dev[r].Tokens[i] != cpu[r].Tokens[i] {
				break
			}
			res.DecodeSame++
			a, b = append(a, cpu[r].LogProbs[i]), append(b, dev[r].LogProbs[i])
		}
	}
	res.Decode = diff("decode log-probs", a, b)
	return nil
}
