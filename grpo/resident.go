package grpo

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/runtime"
)

// trainStats are the train.onnx outputs read back to Go besides the loss:
// per-token statistics (tokenStats).
var trainStats = []string{"loss", "kl", "clipped", "ratio", "entropy"}

// resident holds the trainer's tensors on the execution device: adapters,
// the base model's zero adapters, AdamW's moments, the gradient sums and
// the buffers the graphs write, so that a step moves none of them between
// Go and ONNX Runtime. Every buffer is written in place by a bound output;
// the "next" sets receive a graph's results and are swapped in, so that no
// graph reads and writes the same tensor.
type resident struct {
	dev                    *runtime.Device
	train, adamw, logprobs *runtime.BoundSession
	params, m, v, zeros    map[string]*runtime.DeviceTensor
	nextP, nextM, nextV    map[string]*runtime.DeviceTensor
	grad, gradNext, gOut   map[string]*runtime.DeviceTensor
	// acc sums the gradients of one train pass: key -1 every adapter, r
	// the adapters of role r.
	acc    map[int]*runtime.Accumulator
	names  []string
	roleOf map[string]int
}

// openResident opens the graphs on the device and uploads the initial
// state (params, m, v: host tensors in tr.names order).
func openResident(tr *Trainer, params, m, v map[string]*runtime.Tensor) (*resident, error) {
	opts := &runtime.Options{Device: tr.opts.Device, IntraOpThreads: tr.cfg.Threads}
	dev, err := runtime.OpenDevice(opts)
	if err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	r := &resident{dev: dev, names: tr.names, roleOf: tr.roleOf, acc: map[int]*runtime.Accumulator{}}
	open := func(g string) (*runtime.BoundSession, error) {
		spec := tr.man.Graphs[g]
		so, err := runtime.ForGraph(spec, runtime.Options{Device: tr.opts.Device, IntraOpThreads: tr.cfg.Threads,
			NoMemArena: tr.cfg.LowMemory && g != manifest.GraphAdamW})
		if err != nil {
			return nil, err
		}
		return runtime.NewBoundSession(filepath.Join(tr.opts.Model, spec.File), dev, so)
	}
	fail := func(err error) (*resident, error) { r.close(); return nil, err }
	if r.train, err = open(manifest.GraphTrain); err != nil {
		return fail(err)
	}
	if r.adamw, err = open(manifest.GraphAdamW); err != nil {
		return fail(err)
	}
	if r.logprobs, err = open(manifest.GraphLogprobs); err != nil {
		return fail(err)
	}
	sets := []*map[string]*runtime.DeviceTensor{&r.params, &r.m, &r.v, &r.zeros, &r.nextP, &r.nextM, &r.nextV, &r.grad, &r.gradNext, &r.gOut}
	labels := []string{"", "m.", "v.", "zero.", "new.", "new_m.", "new_v.", "gradsum.", "gradsum_next.", "grad."}
	for i, set := range sets {
		*set = map[string]*runtime.DeviceTensor{}
		for _, n := range tr.names {
			t, err := dev.NewTensor(labels[i]+n, tr.dt, params[n].Shape()...)
			if err != nil {
				return fail(fmt.Errorf("grpo: %w", err))
			}
			(*set)[n] = t
		}
	}
	if err := r.upload(params, m, v); err != nil {
		return fail(err)
	}
	groups := map[int][]string{-1: tr.names}
	for _, n := range tr.names {
		groups[tr.roleOf[n]] = append(groups[tr.roleOf[n]], n)
	}
	for key, names := range groups {
		specs := make([]runtime.TensorSpec, len(names))
		for i, n := range names {
			specs[i] = runtime.TensorSpec{Name: n, DType: tr.dt, Shape: params[n].Shape()}
		}
		if r.acc[key], err = runtime.NewAccumulator(dev, opts, specs); err != nil {
			return fail(fmt.Errorf("grpo: %w", err))
		}
	}
	return r, nil
}

// upload replaces the device state with host tensors (start, resume).
func (r *resident) upload(params, m, v map[string]*runtime.Tensor) error {
	for _, n := range r.names {
		for _, x := range []struct {
			dst *runtime.DeviceTensor
			src *runtime.Tensor
		}{{r.params[n], params[n]}, {r.m[n], m[n]}, {r.v[n], v[n]}} {
			if err := x.dst.Upload(x.src); err != nil {
				return fmt.Errorf("grpo: %w", err)
			}
		}
	}
	return nil
}

// download copies a device set to Go (checkpoints, Adapters).
func (r *resident) download(set map[string]*runtime.DeviceTensor) (map[string]*runtime.Tensor, error) {
	out := map[string]*runtime.Tensor{}
	for _, n := range r.names {
		t, err := set[n].Download()
		if err != nil {
			return nil, fmt.Errorf("grpo: %w", err)
		}
		out[n] = t
	}
	return out, nil
}

// feeds adds the adapters (params, or the zeros for the base model) to in.
func (r *resident) feeds(in map[string]runtime.Value, base bool) {
	set := r.params
	if base {
		set = r.zeros
	}
	for _, n := range r.names {
		in[n] = set[n]
	}
}

func values(in map[string]*runtime.Tensor) map[string]runtime.Value {
	out := make(map[string]runtime.Value, len(in)+8)
	for k, v := range in {
		out[k] = v
	}
	return out
}

// zeroGrads starts a mini-batch's gradient sums.
func (r *resident) zeroGrads() error {
	for _, n := range r.names {
		if err := r.grad[n].Zero(); err != nil {
			return fmt.Errorf("grpo: %w", err)
		}
	}
	return nil
}

// trainPass runs train.onnx on the small host inputs with the resident
// adapters, adds the gradients of group (-1: all adapters; r: role r's)
// into the sums on the device, and returns the statistics outputs and
// whether the added gradients were finite.
func (r *resident) trainPass(in map[string]*runtime.Tensor, group int) (map[string]*runtime.Tensor, bool, error) {
	feed := values(in)
	r.feeds(feed, false)
	into := map[string]*runtime.DeviceTensor{}
	for _, n := range r.names {
		into["grad."+n] = r.gOut[n]
	}
	out, err := r.train.Run(feed, into, trainStats...)
	if err != nil {
		return nil, false, fmt.Errorf("grpo: train.onnx: %w", err)
	}
	acc := r.acc[group]
	if acc == nil {
		return nil, false, fmt.Errorf("grpo: no gradient accumulator for role %d", group)
	}
	names := r.names
	if group >= 0 {
		names = nil
		for _, n := range r.names {
			if r.groupOf(n, group) {
				names = append(names, n)
			}
		}
	}
	sum, cur, g := make([]*runtime.DeviceTensor, len(names)), make([]*runtime.DeviceTensor, len(names)), make([]*runtime.DeviceTensor, len(names))
	for i, n := range names {
		sum[i], cur[i], g[i] = r.gradNext[n], r.grad[n], r.gOut[n]
	}
	finite, err := acc.Add(sum, cur, g)
	if err != nil {
		return nil, false, fmt.Errorf("grpo: %w", err)
	}
	for _, n := range names {
		r.grad[n], r.gradNext[n] = r.gradNext[n], r.grad[n]
	}
	return out, finite, nil
}

// groupOf reports whether adapter n belongs to the accumulator of group.
func (r *resident) groupOf(n string, group int) bool {
	return r.roleOf[n] == group
}

// adamwStep runs adamw.onnx on the resident parameters, moments and
// gradient sums with the host scalars in, and swaps in the results when
// take accepts the gradient norm (else the old ones stay). It returns the
// gradient norm.
func (r *resident) adamwStep(in map[string]*runtime.Tensor, take func(norm float64) bool) (float64, error) {
	feed := values(in)
	into := map[string]*runtime.DeviceTensor{}
	for _, n := range r.names {
		feed[n], feed["grad."+n], feed["m."+n], feed["v."+n] = r.params[n], r.grad[n], r.m[n], r.v[n]
		into["new."+n], into["new_m."+n], into["new_v."+n] = r.nextP[n], r.nextM[n], r.nextV[n]
	}
	out, err := r.adamw.Run(feed, into, "grad_norm")
	if err != nil {
		return 0, fmt.Errorf("grpo: adamw.onnx: %w", err)
	}
	norm := out["grad_norm"].Floats()[0]
	if !take(norm) {
		return norm, nil
	}
	r.params, r.nextP = r.nextP, r.params
	r.m, r.nextM = r.nextM, r.m
	r.v, r.nextV = r.nextV, r.v
	return norm, nil
}

// logprobsRun runs logprobs.onnx with the resident adapters (or zeros).
func (r *resident) logprobsRun(in map[string]*runtime.Tensor, base bool) (*runtime.Tensor, error) {
	feed := values(in)
	r.feeds(feed, base)
	out, err := r.logprobs.Run(feed, nil, "logprobs")
	if err != nil {
		return nil, fmt.Errorf("grpo: logprobs.onnx: %w", err)
	}
	return out["logprobs"], nil
}

// tie copies role 0's adapters into the other roles' slots on the device.
func (r *resident) tie(pairs [][2]string) error {
	for _, p := range pairs {
		if err := r.params[p[1]].CopyFrom(r.params[p[0]]); err != nil {
			return fmt.Errorf("grpo: %w", err)
		}
	}
	return nil
}

// close releases tensors, then accumulators and sessions (the device's
// allocator belongs to the first session on CUDA).
func (r *resident) close() error {
	var errs []error
	for _, set := range []map[string]*runtime.DeviceTensor{r.params, r.m, r.v, r.zeros, r.nextP, r.nextM, r.nextV, r.grad, r.gradNext, r.gOut} {
		for _, t := range set {
			t.Destroy()
		}
	}
	keys := make([]int, 0, len(r.acc))
	for k := range r.acc {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		errs = append(errs, r.acc[k].Destroy())
	}
	for _, s := range []*runtime.BoundSession{r.logprobs, r.adamw, r.train} {
		if s != nil {
			errs = append(errs, s.Destroy())
		}
	}
	if r.dev != nil {
		r.dev.Close()
	}
	return errors.Join(errs...)
}
