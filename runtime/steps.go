package runtime

import (
	"fmt"

	"github.com/dartc/dartc/compiler/manifest"
)

// steps runs the graph's steps of one Generate call and keeps each agent's
// KV cache between them: in Go memory (hostSteps, a Session fed host
// tensors) or on the execution device (deviceSteps, a BoundSession).
type steps interface {
	// carry starts agent k's cache from the row caches: C columns, row i's
	// n[i] carried tokens right-aligned, masked zeros before them.
	carry(k int, caches []*RowCache, n []int, C int) error
	// step runs agent k over a step's small inputs (ids, mask, positions,
	// roles, sampler feed), grows its cache by the step's columns and
	// returns the host outputs mode reads.
	step(k int, small map[string]*Tensor, mode stepMode) (map[string]*Tensor, error)
	// rerun runs agent k's last step again with another sampler feed and
	// returns the sampler's outputs; the cache is left as the step made it.
	rerun(k int, feed map[string]*Tensor) (map[string]*Tensor, error)
	// keep stores every agent's cache into the row caches.
	keep(caches []*RowCache, rows []rowState, agents int) error
	close()
}

func (d *Decoder) newSteps(cfg *GenerateConfig, B int, mode stepMode, useCache bool) (steps, error) {
	n := max(cfg.Agents, 1)
	if d.bound != nil {
		return d.newDeviceSteps(cfg, B, n, useCache)
	}
	if len(cfg.Resident) > 0 {
		return nil, fmt.Errorf("runtime: generate: GenerateConfig.Resident holds device tensors, but the decoder runs with host tensors: open it with DecoderSpec.Resident, or pass the inputs in GenerateConfig.Inputs")
	}
	h := &hostSteps{d: d, cfg: cfg, B: int64(B), useCache: useCache, pasts: make([]map[string]*Tensor, n), last: make([]map[string]*Tensor, n)}
	// Steps that do not read the logits still get them from ONNX Runtime
	// (a session fetches every output): one buffer, written at every step,
	// saves allocating a vocabulary-sized tensor per step.
	if mode != stepLogits {
		h.unread = map[string]*Tensor{d.spec.Logits: NewTensor(d.logits.DType, int64(B), 1, d.vocab)}
	}
	return h, nil
}

// hostSteps feeds the adapters and the whole cache as host tensors at every
// step and reads the presents back: the reference the device path matches.
type hostSteps struct {
	d        *Decoder
	cfg      *GenerateConfig
	B        int64
	useCache bool
	pasts    []map[string]*Tensor // agent k's cache, by present name
	last     []map[string]*Tensor // agent k's last inputs, for reruns
	unread   map[string]*Tensor
}

func (h *hostSteps) carry(k int, caches []*RowCache, n []int, C int) error {
	h.pasts[k] = h.d.carriedPast(caches, n, C, k)
	return nil
}

func (h *hostSteps) step(k int, small map[string]*Tensor, mode stepMode) (map[string]*Tensor, error) {
	d := h.d
	in := make(map[string]*Tensor, len(d.inputs))
	for n, v := range h.cfg.Inputs {
		in[n] = v
	}
	for n, v := range small {
		in[n] = v
	}
	s := small[d.spec.InputIDs].shape[1]
	past := h.pasts[k]
	pastLen := int64(0)
	if past != nil {
		pastLen = past[d.spec.Cache[0].PresentKey].shape[2]
	}
	out := map[string]*Tensor{}
	for _, pair := range d.pairs {
		if past != nil {
			in[pair[0]] = past[pair[1]]
		} else {
			in[pair[0]] = NewTensor(d.cacheDType, h.B, d.spec.KVHeads, 0, d.spec.HeadDim)
		}
		out[pair[1]] = NewTensor(d.cacheDType, h.B, d.spec.KVHeads, pastLen+s, d.spec.HeadDim)
	}
	for n, v := range h.unread {
		out[n] = v
	}
	for n, v := range d.modeOutputs(mode, h.B, s) {
		out[n] = v
	}
	res, err := d.sess.RunInto(in, out, outputNames(out)...)
	if err != nil {
		return nil, err
	}
	if h.useCache {
		h.pasts[k] = res
	}
	h.last[k] = in
	return res, nil
}

func (h *hostSteps) rerun(k int, feed map[string]*Tensor) (map[string]*Tensor, error) {
	in := h.last[k]
	for n, v := range feed {
		in[n] = v
	}
	out := map[string]*Tensor{}
	sampleOutputTensors(out, h.B)
	return h.d.sess.RunInto(in, out, outputNames(out)...)
}

func (h *hostSteps) keep(caches []*RowCache, rows []rowState, agents int) error {
	for k := range h.pasts {
		h.d.keepCache(caches, rows, h.pasts[k], k, agents)
	}
	return nil
}

func (h *hostSteps) close() {}

// modeOutputs pre-allocates the outputs a step of mode reads (s columns).
func (d *Decoder) modeOutputs(mode stepMode, B, s int64) map[string]*Tensor {
	out := map[string]*Tensor{}
	switch mode {
	case stepGreedy:
		out[manifest.NextTokenOutput] = NewTensor(Int64, B)
		out[manifest.NextLogprobOutput] = NewTensor(Float32, B)
	case stepSample:
		sampleOutputTensors(out, B)
	default:
		ls := s
		if d.lastOnly {
			ls = 1
		}
		out[d.spec.Logits] = NewTensor(d.logits.DType, B, ls, d.vocab)
	}
	return out
}

// modeOutputNames names the outputs a step of mode reads, for a bound
// session that allocates them itself.
func (d *Decoder) modeOutputNames(mode stepMode) []string {
	switch mode {
	case stepGreedy:
		return greedyOutputs
	case stepSample:
		return sampleOutputs
	default:
		return []string{d.spec.Logits}
	}
}

var (
	greedyOutputs = []string{manifest.NextTokenOutput, manifest.NextLogprobOutput}
	sampleOutputs = []string{manifest.SampleTokenOutput, manifest.SampleLogprobOutput, manifest.SampleAcceptedOutput}
)

// deviceSteps keeps the adapters and every agent's cache on the decoder's
// device: the adapters are bound as they are, each step's presents are
// allocated there by ONNX Runtime and fed as the next step's past, and only
// the small inputs and the outputs mode reads cross to Go.
type deviceSteps struct {
	d        *Decoder
	B        int64
	useCache bool
	static   map[string]Value         // adapters and other fixed inputs
	uploaded []*DeviceTensor          // host inputs uploaded for this call
	empty    map[string]*DeviceTensor // zero-length pasts, by past name
	pasts    []map[string]*DeviceTensor
	// stale holds agent k's previous past, which its last step read and
	// a rerun reads again; it is freed when the agent steps on.
	stale []map[string]*DeviceTensor
	last  []map[string]Value
}

func (d *Decoder) newDeviceSteps(cfg *GenerateConfig, B, agents int, useCache bool) (steps, error) {
	ds := &deviceSteps{d: d, B: int64(B), useCache: useCache, static: map[string]Value{}, empty: map[string]*DeviceTensor{},
		pasts: make([]map[string]*DeviceTensor, agents), stale: make([]map[string]*DeviceTensor, agents), last: make([]map[string]Value, agents)}
	for n, t := range cfg.Resident {
		if !t.dev.sharesMemory(d.dev) {
			return nil, fmt.Errorf("runtime: generate: resident input %s is on %s, the decoder runs on %s (upload it with Decoder.UploadInputs)", t, t.dev, d.dev)
		}
		ds.static[n] = t
	}
	// Host inputs are uploaded once for the call, not at every step.
	for n, t := range cfg.Inputs {
		if cfg.Resident[n] != nil {
			continue
		}
		dt, err := d.dev.UploadTensor(n, t)
		if err != nil {
			ds.close()
			return nil, fmt.Errorf("runtime: generate: %w", err)
		}
		ds.uploaded = append(ds.uploaded, dt)
		ds.static[n] = dt
	}
	for _, pair := range d.pairs {
		t, err := d.dev.NewTensor(pair[0], d.cacheDType, int64(B), d.spec.KVHeads, 0, d.spec.HeadDim)
		if err != nil {
			ds.close()
			return nil, fmt.Errorf("runtime: generate: %w", err)
		}
		ds.empty[pair[0]] = t
	}
	return ds, nil
}

func (ds *deviceSteps) carry(k int, caches []*RowCache, n []int, C int) error {
	p, err := ds.d.residentPast(caches, n, C, k)
	if err != nil {
		return err
	}
	ds.pasts[k] = p
	return nil
}

func (ds *deviceSteps) step(k int, small map[string]*Tensor, mode stepMode) (map[string]*Tensor, error) {
	d := ds.d
	freeAll(ds.stale[k])
	ds.stale[k] = nil
	in := make(map[string]Value, len(d.inputs))
	for n, v := range ds.static {
		in[n] = v
	}
	for n, v := range small {
		in[n] = v
	}
	past := ds.pasts[k]
	var alloc []string
	for _, pair := range d.pairs {
		if past != nil {
			in[pair[0]] = past[pair[1]]
		} else {
			in[pair[0]] = ds.empty[pair[0]]
		}
		if ds.useCache {
			alloc = append(alloc, pair[1])
		}
	}
	present, res, err := d.bound.RunDevice(in, nil, alloc, d.modeOutputNames(mode)...)
	if err != nil {
		return nil, err
	}
	if ds.useCache {
		ds.stale[k], ds.pasts[k] = past, present
	}
	ds.last[k] = in
	return res, nil
}

func (ds *deviceSteps) rerun(k int, feed map[string]*Tensor) (map[string]*Tensor, error) {
	in := ds.last[k]
	for n, v := range feed {
		in[n] = v
	}
	return ds.d.bound.Run(in, nil, sampleOutputs...)
}

func (ds *deviceSteps) keep(caches []*RowCache, rows []rowState, agents int) error {
	for k := range ds.pasts {
		if err := ds.d.keepResident(caches, rows, ds.pasts[k], k, agents); err != nil {
			return err
		}
	}
	return nil
}

func (ds *deviceSteps) close() {
	for k := range ds.pasts {
		freeAll(ds.pasts[k])
		freeAll(ds.stale[k])
	}
	freeAll(ds.empty)
	for _, t := range ds.uploaded {
		t.Destroy()
	}
}

func freeAll(m map[string]*DeviceTensor) {
	for _, t := range m {
		t.Destroy()
	}
}

// UploadInputs copies host tensors (adapters) onto a resident decoder's
// device once, to be bound at every step through GenerateConfig.Resident.
// The caller destroys them before the decoder.
func (d *Decoder) UploadInputs(inputs map[string]*Tensor) (map[string]*DeviceTensor, error) {
	if d.bound == nil {
		return nil, fmt.Errorf("runtime: upload inputs: the decoder runs with host tensors (open it with DecoderSpec.Resident)")
	}
	out := make(map[string]*DeviceTensor, len(inputs))
	for n, t := range inputs {
		io, ok := d.input(n)
		if !ok || d.dynamic[n] {
			freeAll(out)
			return nil, fmt.Errorf("runtime: upload inputs: %q is not one of the graph's fixed inputs (%s)", n, ioNames(d.StaticInputs()))
		}
		if err := checkShape(io, t.DType(), t.Shape(), nil); err != nil {
			freeAll(out)
			return nil, fmt.Errorf("runtime: upload inputs: %w", err)
		}
		dt, err := d.dev.UploadTensor(n, t)
		if err != nil {
			freeAll(out)
			return nil, err
		}
		out[n] = dt
	}
	return out, nil
}

func ioNames(ios []IOInfo) string {
	s := ""
	for i, io := range ios {
		if i > 0 {
			s += ", "
		}
		s += io.Name
	}
	return s
}
