package runtime

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dartc/dartc/runtime/internal/ortc"
)

// Transfers counts the bytes that crossed between Go memory and ONNX
// Runtime's tensors: what Go handed to ONNX Runtime (host inputs, uploads)
// and what it read back (host outputs, downloads), in total and per tensor
// name. Host-tensor Session runs count every input and output; bound
// sessions count only their host inputs and outputs, and DeviceTensor
// uploads and downloads. Copies between device tensors are not crossings.
type Transfers struct {
	ToORT, FromORT int64
	// ByName holds each tensor's bytes, both directions together.
	ByName map[string]int64
}

var (
	transferMu sync.Mutex
	transfers  = Transfers{ByName: map[string]int64{}}
)

func countTransfer(name string, n int, toORT bool) {
	transferMu.Lock()
	defer transferMu.Unlock()
	if toORT {
		transfers.ToORT += int64(n)
	} else {
		transfers.FromORT += int64(n)
	}
	transfers.ByName[name] += int64(n)
}

// TransferStats returns a copy of the process-wide transfer counters.
func TransferStats() Transfers {
	transferMu.Lock()
	defer transferMu.Unlock()
	out := Transfers{ToORT: transfers.ToORT, FromORT: transfers.FromORT, ByName: map[string]int64{}}
	for k, v := range transfers.ByName {
		out.ByName[k] = v
	}
	return out
}

// ResetTransferStats zeroes the transfer counters.
func ResetTransferStats() {
	transferMu.Lock()
	defer transferMu.Unlock()
	transfers = Transfers{ByName: map[string]int64{}}
}

var (
	ortcOnce sync.Once
	ortcErr  error
)

// initDevice opens dartc's own C API layer on the loaded library.
func initDevice() error { return initDeviceFor("") }

func initDeviceFor(device string) error {
	lib, err := InitFor(device)
	if err != nil {
		return err
	}
	ortcOnce.Do(func() { ortcErr = ortc.Open(lib) })
	return ortcErr
}

// Providers lists the execution providers the loaded library was built
// with (ONNX Runtime's GetAvailableProviders). A listed provider may still
// fail to load: CUDA needs its provider library, CUDA 13, cuDNN 9 and a GPU.
func Providers() ([]string, error) {
	if err := initDevice(); err != nil {
		return nil, err
	}
	return ortc.AvailableProviders()
}

// Device is where resident tensors live and bound sessions run: the CPU or
// one CUDA device. Tensors on the CPU device come from ONNX Runtime's
// default CPU allocator; on CUDA, from the allocator of the first bound
// session opened on the device, so that session must outlive them.
type Device struct {
	kind    string
	ordinal int
	mem     *ortc.MemoryInfo // where resident tensors live
	host    *ortc.MemoryInfo // host memory, for outputs read back by Go
	alloc   *ortc.Allocator
	owner   *ortc.Session
}

// OpenDevice returns the device of opts (nil: the CPU).
func OpenDevice(opts *Options) (*Device, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := initDeviceFor(opts.Device); err != nil {
		return nil, err
	}
	d := &Device{kind: opts.Device, ordinal: opts.CUDADevice}
	var err error
	if d.host, err = ortc.CPUMemory(); err != nil {
		return nil, fmt.Errorf("runtime: open device: %w", err)
	}
	switch opts.Device {
	case "", DeviceCPU:
		d.kind, d.mem = DeviceCPU, d.host
		d.alloc, err = ortc.DefaultAllocator(d.host)
	case DeviceCUDA:
		d.mem, err = ortc.CUDAMemory(opts.CUDADevice)
	default:
		err = fmt.Errorf("unknown device %q (want cpu or cuda)", opts.Device)
	}
	if err != nil {
		d.Close() // the memory infos made so far
		return nil, fmt.Errorf("runtime: open device: %w", err)
	}
	return d, nil
}

// sharesMemory reports whether tensors of d can be bound by sessions on e:
// the same device (kind and ordinal), whichever OpenDevice returned them —
// a trainer's adapters read in place by a decoder's session.
func (d *Device) sharesMemory(e *Device) bool {
	return d == e || (d != nil && e != nil && d.kind == e.kind && d.ordinal == e.ordinal)
}

// String names the device ("cpu", "cuda:0").
func (d *Device) String() string {
	if d.kind == DeviceCUDA {
		return "cuda:" + strconv.Itoa(d.ordinal)
	}
	return d.kind
}

// Close releases the device's allocator and memory infos; its tensors
// must have been destroyed.
func (d *Device) Close() {
	if d.alloc != nil {
		d.alloc.Release()
		d.alloc = nil
	}
	if d.mem != nil && d.mem != d.host {
		d.mem.Release()
	}
	if d.host != nil {
		d.host.Release()
	}
	d.mem, d.host = nil, nil
}

// DeviceTensor is a tensor that ONNX Runtime allocated on a Device. It stays
// there across runs: bound as a session input it is read in place, bound
// as an output it is written in place. Go reads or writes its contents only
// through Upload and Download, which are counted as transfers.
type DeviceTensor struct {
	// Name labels the tensor in the transfer counters.
	Name  string
	dtype DType
	shape []int64
	val   *ortc.Value
	dev   *Device
}

// NewTensor allocates a zero-filled tensor on the device.
func (d *Device) NewTensor(name string, dt DType, shape ...int64) (*DeviceTensor, error) {
	if d.alloc == nil {
		return nil, fmt.Errorf("runtime: tensor %s on %s: no allocator yet; open a bound session on the device first", name, d)
	}
	v, err := d.alloc.NewTensor(int(dt.ort()), shape)
	if err != nil {
		return nil, fmt.Errorf("runtime: tensor %s on %s: %w", name, d, err)
	}
	t := &DeviceTensor{Name: name, dtype: dt, shape: append([]int64(nil), shape...), val: v, dev: d}
	if err := v.Zero(t.nbytes()); err != nil {
		v.Release()
		return nil, fmt.Errorf("runtime: tensor %s on %s: %w", name, d, err)
	}
	return t, nil
}

// UploadTensor allocates a device tensor holding a copy of host.
func (d *Device) UploadTensor(name string, host *Tensor) (*DeviceTensor, error) {
	t, err := d.NewTensor(name, host.DType(), host.Shape()...)
	if err != nil {
		return nil, err
	}
	if err := t.Upload(host); err != nil {
		t.Destroy()
		return nil, err
	}
	return t, nil
}

// DType returns the element type.
func (t *DeviceTensor) DType() DType { return t.dtype }

// Shape returns a copy of the dims.
func (t *DeviceTensor) Shape() []int64 { return append([]int64(nil), t.shape...) }

func (t *DeviceTensor) nbytes() int {
	n := t.dtype.Size()
	for _, d := range t.shape {
		n *= int(d)
	}
	return n
}

func (t *DeviceTensor) String() string {
	return fmt.Sprintf("%s %v%v on %s", t.Name, t.dtype, t.shape, t.dev)
}

// Destroy frees the tensor; safe to call twice.
func (t *DeviceTensor) Destroy() {
	if t != nil && t.val != nil {
		t.val.Release()
		t.val = nil
	}
}

func (t *DeviceTensor) sameLayout(dt DType, shape []int64) error {
	if t.val == nil {
		return fmt.Errorf("%s: destroyed", t.Name)
	}
	if dt != t.dtype || !equalShape(shape, t.shape) {
		return fmt.Errorf("%s is %v%v, not %v%v", t.Name, t.dtype, t.shape, dt, shape)
	}
	return nil
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Upload copies host's contents onto the device (a counted transfer).
func (t *DeviceTensor) Upload(host *Tensor) error {
	if err := t.sameLayout(host.DType(), host.Shape()); err != nil {
		return fmt.Errorf("runtime: upload: %w", err)
	}
	if err := t.val.Upload(host.Bytes()); err != nil {
		return fmt.Errorf("runtime: upload %s: %w", t.Name, err)
	}
	countTransfer(t.Name, len(host.Bytes()), true)
	return nil
}

// Download copies the tensor into Go memory (a counted transfer).
func (t *DeviceTensor) Download() (*Tensor, error) {
	if t.val == nil {
		return nil, fmt.Errorf("runtime: download %s: destroyed", t.Name)
	}
	host := NewTensor(t.dtype, t.shape...)
	if err := t.val.Download(host.Bytes()); err != nil {
		return nil, fmt.Errorf("runtime: download %s: %w", t.Name, err)
	}
	countTransfer(t.Name, len(host.Bytes()), false)
	return host, nil
}

// Zero fills the tensor with zeros on the device.
func (t *DeviceTensor) Zero() error {
	if t.val == nil {
		return fmt.Errorf("runtime: zero %s: destroyed", t.Name)
	}
	if err := t.val.Zero(t.nbytes()); err != nil {
		return fmt.Errorf("runtime: zero %s: %w", t.Name, err)
	}
	return nil
}

// CopyFrom copies src into t on the device; nothing crosses to Go.
func (t *DeviceTensor) CopyFrom(src *DeviceTensor) error {
	if err := t.sameLayout(src.dtype, src.shape); err != nil {
		return fmt.Errorf("runtime: device copy: %w", err)
	}
	if src.val == nil {
		return fmt.Errorf("runtime: device copy: %s: destroyed", src.Name)
	}
	if err := t.val.CopyFrom(src.val, t.nbytes()); err != nil {
		return fmt.Errorf("runtime: device copy %s → %s: %w", src.Name, t.Name, err)
	}
	return nil
}

// copyChunks copies byte ranges of src into t on the device (nothing
// crosses to Go): chunk i is chunks[3i+2] bytes from src's byte offset
// chunks[3i+1] to t's byte offset chunks[3i].
func (t *DeviceTensor) copyChunks(src *DeviceTensor, chunks []int64) error {
	if t.val == nil || src.val == nil {
		return fmt.Errorf("runtime: device copy %s → %s: destroyed", src.Name, t.Name)
	}
	if !t.dev.sharesMemory(src.dev) {
		return fmt.Errorf("runtime: device copy %s → %s: on %s and %s", src.Name, t.Name, src.dev, t.dev)
	}
	nd, ns := int64(t.nbytes()), int64(src.nbytes())
	for i := 0; i+2 < len(chunks); i += 3 {
		if chunks[i] < 0 || chunks[i+1] < 0 || chunks[i+2] < 0 || chunks[i]+chunks[i+2] > nd || chunks[i+1]+chunks[i+2] > ns {
			return fmt.Errorf("runtime: device copy %s → %s: bytes [%d, +%d) → [%d, +%d) outside the tensors (%d, %d bytes)",
				src.Name, t.Name, chunks[i+1], chunks[i+2], chunks[i], chunks[i+2], ns, nd)
		}
	}
	if err := t.val.CopyChunks(src.val, chunks); err != nil {
		return fmt.Errorf("runtime: device copy %s → %s: %w", src.Name, t.Name, err)
	}
	return nil
}

// Value is a session feed: a host *Tensor or a *DeviceTensor.
type Value interface {
	DType() DType
	Shape() []int64
}

// BoundSession runs a graph through ONNX Runtime's IoBinding with dartc's
// own C API layer: inputs may be device tensors, read in place, and outputs
// may be written into device tensors, so that state such as adapters,
// gradients, optimizer moments and KV caches never leaves the device.
// Host tensors fed to it and outputs read back to Go are counted as
// transfers. It is not safe for concurrent Run calls.
type BoundSession struct {
	path    string
	dev     *Device
	sess    *ortc.Session
	bind    *ortc.Binding
	inputs  []IOInfo
	outputs []IOInfo
	profile bool
	runTime time.Duration
}

// NewBoundSession opens the model at path on dev with opts (its Device
// must name dev's kind).
func NewBoundSession(path string, dev *Device, opts *Options) (*BoundSession, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &BoundSession{path: path, dev: dev}
	var err error
	if s.inputs, s.outputs, err = graphIO(path); err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", path, err)
	}
	opts = withFloat64Config(opts, s.inputs, s.outputs)
	if err := s.open(func(so *ortc.SessionOptions) (*ortc.Session, error) { return ortc.NewSession(path, so) }, opts); err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", path, err)
	}
	return s, nil
}

// newBoundSessionFromBytes opens a serialized model whose inputs and
// outputs the caller describes.
func newBoundSessionFromBytes(name string, model []byte, dev *Device, opts *Options, ins, outs []IOInfo) (*BoundSession, error) {
	s := &BoundSession{path: name, dev: dev, inputs: ins, outputs: outs}
	if err := s.open(func(so *ortc.SessionOptions) (*ortc.Session, error) { return ortc.NewSessionFromBytes(model, so) }, opts); err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", name, err)
	}
	return s, nil
}

func (s *BoundSession) open(create func(*ortc.SessionOptions) (*ortc.Session, error), opts *Options) error {
	want := opts.Device
	if want == "" {
		want = DeviceCPU
	}
	if want != s.dev.kind || (want == DeviceCUDA && opts.CUDADevice != s.dev.ordinal) {
		return fmt.Errorf("options name device %s/%d, the session's device is %s", want, opts.CUDADevice, s.dev)
	}
	if err := opts.checkDiagnostics(); err != nil {
		return err
	}
	so, err := ortc.NewSessionOptions()
	if err != nil {
		return err
	}
	defer so.Release()
	if err := configure(so, opts, s.path); err != nil {
		return err
	}
	s.profile = opts.diag().Profile != ""
	if s.sess, err = create(so); err != nil {
		if want == DeviceCUDA {
			return cudaError(err)
		}
		return err
	}
	if s.bind, err = s.sess.NewBinding(); err != nil {
		s.sess.Release()
		return err
	}
	if s.dev.alloc == nil {
		if s.dev.alloc, err = s.sess.NewAllocator(s.dev.mem); err != nil {
			s.Destroy()
			return err
		}
		s.dev.owner = s.sess
	}
	return nil
}

// configure applies opts to ortc session options.
func configure(so *ortc.SessionOptions, opts *Options, name string) error {
	if opts.IntraOpThreads > 0 {
		if err := so.IntraOpThreads(opts.IntraOpThreads); err != nil {
			return err
		}
	}
	if opts.NoMemArena {
		if err := so.DisableCPUMemArena(); err != nil {
			return err
		}
	}
	level := map[Optimization]int{OptimizeAll: ortc.OptAll, OptimizeNone: ortc.OptDisableAll,
		OptimizeBasic: ortc.OptBasic, OptimizeExtended: ortc.OptExtended}
	lv, ok := level[opts.Optimization]
	if !ok {
		return fmt.Errorf("unknown optimization level %d", opts.Optimization)
	}
	if err := so.Optimization(lv); err != nil {
		return err
	}
	diag := opts.diag()
	cfg := map[string]string{}
	for k, v := range opts.Config {
		cfg[k] = v
	}
	if diag.Strict && opts.Device == DeviceCUDA {
		cfg[ConfigDisableCPUFallback] = "1"
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := so.Config(k, cfg[k]); err != nil {
			return err
		}
	}
	if diag.LogLevel >= 0 {
		if err := so.LogSeverity(diag.LogLevel, name); err != nil {
			return err
		}
	}
	if diag.Profile != "" {
		if err := so.Profile(diag.Profile); err != nil {
			return err
		}
	}
	if opts.Device == DeviceCUDA {
		if err := so.AppendCUDA(map[string]string{"device_id": strconv.Itoa(opts.CUDADevice)}); err != nil {
			return cudaError(err)
		}
	}
	return nil
}

// Path returns the model the session was opened from.
func (s *BoundSession) Path() string { return s.path }

// Device returns the session's device.
func (s *BoundSession) Device() *Device { return s.dev }

// Inputs describes the graph inputs.
func (s *BoundSession) Inputs() []IOInfo { return append([]IOInfo(nil), s.inputs...) }

// Outputs describes the graph outputs.
func (s *BoundSession) Outputs() []IOInfo { return append([]IOInfo(nil), s.outputs...) }

// Input returns the named input's description.
func (s *BoundSession) Input(name string) (IOInfo, bool) { return find(s.inputs, name) }

// Output returns the named output's description.
func (s *BoundSession) Output(name string) (IOInfo, bool) { return find(s.outputs, name) }

// RunTime returns the wall time spent inside ONNX Runtime's runs so far.
func (s *BoundSession) RunTime() time.Duration { return s.runTime }

// EndProfiling writes ONNX Runtime's per-node profile (when profiling was
// enabled) and returns the JSON file's path; "" when it was not.
func (s *BoundSession) EndProfiling() (string, error) {
	if !s.profile || s.sess == nil {
		return "", nil
	}
	s.profile = false
	p, err := s.sess.EndProfiling()
	if err != nil {
		return "", fmt.Errorf("runtime: %s: %w", s.path, err)
	}
	return p, nil
}

// Destroy releases the session (and the device's allocator when this
// session provided it: destroy the device's tensors first). Safe to call
// twice.
func (s *BoundSession) Destroy() error {
	if s.sess == nil {
		return nil
	}
	if s.bind != nil {
		s.bind.Release()
	}
	if s.dev.owner == s.sess {
		s.dev.alloc.Release()
		s.dev.alloc, s.dev.owner = nil, nil
	}
	s.sess.Release()
	s.sess = nil
	return nil
}

// Run feeds the inputs (every graph input, host or device), writes the
// outputs named in into into those device tensors in place, and returns the
// outputs named in host as Go tensors (read back: counted). Outputs in
// neither are not computed unless other outputs need them.
func (s *BoundSession) Run(inputs map[string]Value, into map[string]*DeviceTensor, host ...string) (map[string]*Tensor, error) {
	if s.sess == nil {
		return nil, fmt.Errorf("runtime: run %s: session destroyed", s.path)
	}
	_, res, err := s.run(inputs, into, nil, host)
	if err != nil {
		return nil, fmt.Errorf("runtime: run %s: %w", s.path, err)
	}
	return res, nil
}

// RunDevice is Run with outputs whose shape only the run knows (a KV cache
// that grows by the step's tokens): ONNX Runtime allocates each output
// named in alloc on the device, and RunDevice returns them as device
// tensors that the caller destroys. They can be fed to the next run as
// they are.
func (s *BoundSession) RunDevice(inputs map[string]Value, into map[string]*DeviceTensor, alloc []string, host ...string) (map[string]*DeviceTensor, map[string]*Tensor, error) {
	if s.sess == nil {
		return nil, nil, fmt.Errorf("runtime: run %s: session destroyed", s.path)
	}
	dev, res, err := s.run(inputs, into, alloc, host)
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: run %s: %w", s.path, err)
	}
	return dev, res, nil
}

func (s *BoundSession) run(inputs map[string]Value, into map[string]*DeviceTensor, alloc, host []string) (map[string]*DeviceTensor, map[string]*Tensor, error) {
	var missing []string
	for _, io := range s.inputs {
		if inputs[io.Name] == nil {
			missing = append(missing, io.String())
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("missing input(s) %s", strings.Join(missing, "; "))
	}
	for name := range inputs {
		if _, ok := find(s.inputs, name); !ok {
			return nil, nil, fmt.Errorf("unknown input %q (the graph's inputs: %s)", name, strings.Join(names(s.inputs), ", "))
		}
	}
	bound := map[string]int64{}
	for _, io := range s.inputs {
		v := inputs[io.Name]
		if err := checkShape(io, v.DType(), v.Shape(), bound); err != nil {
			return nil, nil, err
		}
	}
	s.bind.ClearInputs()
	s.bind.ClearOutputs()
	var temps []*ortc.Value
	defer func() {
		for _, v := range temps {
			v.Release()
		}
	}()
	type hostIn struct {
		name string
		n    int
	}
	var counted []hostIn
	for _, io := range s.inputs {
		switch v := inputs[io.Name].(type) {
		case *DeviceTensor:
			if v.val == nil {
				return nil, nil, fmt.Errorf("input %s: device tensor %s destroyed", io.Name, v.Name)
			}
			if !v.dev.sharesMemory(s.dev) {
				return nil, nil, fmt.Errorf("input %s: %s is on %s, the session runs on %s", io.Name, v.Name, v.dev, s.dev)
			}
			if err := s.bind.Input(io.Name, v.val); err != nil {
				return nil, nil, err
			}
		case *Tensor:
			tv, err := s.hostValue(v)
			if err != nil {
				return nil, nil, fmt.Errorf("input %s: %w", io.Name, err)
			}
			temps = append(temps, tv)
			if err := s.bind.Input(io.Name, tv); err != nil {
				return nil, nil, err
			}
			counted = append(counted, hostIn{io.Name, len(v.Bytes())})
		default:
			return nil, nil, fmt.Errorf("input %s: unsupported value %T", io.Name, v)
		}
	}
	outNames := make([]string, 0, len(into))
	for name := range into {
		outNames = append(outNames, name)
	}
	sort.Strings(outNames)
	for _, name := range outNames {
		io, ok := find(s.outputs, name)
		if !ok {
			return nil, nil, fmt.Errorf("no output %q (outputs: %s)", name, strings.Join(names(s.outputs), ", "))
		}
		t := into[name]
		if !t.dev.sharesMemory(s.dev) || t.val == nil {
			return nil, nil, fmt.Errorf("output %s: %s is not a live tensor on %s", name, t, s.dev)
		}
		if err := checkShape(io, t.dtype, t.shape, nil); err != nil {
			return nil, nil, fmt.Errorf("output buffer: %w", err)
		}
		if shape, ok := resolve(io, bound); ok && !equalShape(shape, t.shape) {
			return nil, nil, fmt.Errorf("output %s: the inputs make it %v, the buffer %s is %v", name, shape, t.Name, t.shape)
		}
		if err := s.bind.Output(name, t.val); err != nil {
			return nil, nil, err
		}
	}
	seen := map[string]bool{}
	for i, name := range append(append([]string(nil), alloc...), host...) {
		if _, ok := find(s.outputs, name); !ok {
			return nil, nil, fmt.Errorf("no output %q (outputs: %s)", name, strings.Join(names(s.outputs), ", "))
		}
		if into[name] != nil || seen[name] {
			return nil, nil, fmt.Errorf("output %s is bound twice (into, alloc, host)", name)
		}
		seen[name] = true
		mem := s.dev.host
		if i < len(alloc) {
			mem = s.dev.mem
		}
		if err := s.bind.OutputTo(name, mem); err != nil {
			return nil, nil, err
		}
	}
	start := time.Now()
	err := s.bind.Run()
	if err == nil {
		err = s.bind.SyncOutputs()
	}
	s.runTime += time.Since(start)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range counted {
		countTransfer(c.name, c.n, true)
	}
	result := map[string]*Tensor{}
	devOut := map[string]*DeviceTensor{}
	if len(host)+len(alloc) == 0 {
		return devOut, result, nil
	}
	cuda := make([]bool, len(outNames)+len(alloc))
	for i := range alloc {
		cuda[len(outNames)+i] = s.dev.kind == DeviceCUDA
	}
	vals, err := s.bind.Outputs(cuda)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, v := range vals {
			v.Release() // no-op for the values kept in devOut
		}
	}()
	if len(vals) != len(outNames)+len(alloc)+len(host) {
		return nil, nil, fmt.Errorf("ONNX Runtime returned %d bound outputs, %d were bound", len(vals), len(outNames)+len(alloc)+len(host))
	}
	// The device tensors taken so far are the caller's only on success.
	fail := func(err error) (map[string]*DeviceTensor, map[string]*Tensor, error) {
		freeAll(devOut)
		return nil, nil, err
	}
	for i, name := range alloc {
		k := len(outNames) + i
		io, _ := find(s.outputs, name)
		elem, shape, err := vals[k].Shape()
		if err != nil {
			return fail(fmt.Errorf("output %s: %w", name, err))
		}
		if elem != int(io.DType.ort()) {
			return fail(fmt.Errorf("output %s: ONNX Runtime element type %d, the graph declares %v", name, elem, io.DType))
		}
		// The device tensor takes over the value: it is not released here.
		v := *vals[k]
		vals[k] = &ortc.Value{}
		devOut[name] = &DeviceTensor{Name: name, dtype: io.DType, shape: shape, val: &v, dev: s.dev}
	}
	for i, name := range host {
		v := vals[len(outNames)+len(alloc)+i]
		io, _ := find(s.outputs, name)
		elem, shape, err := v.Shape()
		if err != nil {
			return fail(fmt.Errorf("output %s: %w", name, err))
		}
		if elem != int(io.DType.ort()) {
			return fail(fmt.Errorf("output %s: ONNX Runtime element type %d, the graph declares %v", name, elem, io.DType))
		}
		t := NewTensor(io.DType, shape...)
		if err := v.Download(t.Bytes()); err != nil {
			return fail(fmt.Errorf("output %s: %w", name, err))
		}
		countTransfer(name, len(t.Bytes()), false)
		result[name] = t
	}
	return devOut, result, nil
}

// hostValue copies a Go tensor into an ONNX Runtime host tensor.
func (s *BoundSession) hostValue(t *Tensor) (*ortc.Value, error) {
	a, err := ortc.DefaultAllocator(s.dev.host)
	if err != nil {
		return nil, err
	}
	v, err := a.NewTensor(int(t.DType().ort()), t.Shape())
	if err != nil {
		return nil, err
	}
	if err := v.Upload(t.Bytes()); err != nil {
		v.Release()
		return nil, err
	}
	return v, nil
}
