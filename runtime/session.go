package runtime

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dartc/dartc/compiler/manifest"
	ort "github.com/yalue/onnxruntime_go"
)

// Devices a session can run on.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// ErrNoCUDA is returned when the CUDA execution provider cannot be loaded.
var ErrNoCUDA = errors.New("runtime: CUDA execution provider unavailable")

// Optimization is an ONNX Runtime graph optimization level.
type Optimization int

// Graph optimization levels; the zero value is ONNX Runtime's default (all).
const (
	OptimizeAll Optimization = iota
	OptimizeNone
	OptimizeBasic
	OptimizeExtended
)

// Options configure a Session. A nil *Options means the defaults.
type Options struct {
	// Device is "cpu" (default) or "cuda".
	Device string
	// CUDADevice is the GPU ordinal for Device "cuda".
	CUDADevice int
	// IntraOpThreads bounds ONNX Runtime's threads per operator (0: its default).
	IntraOpThreads int
	// Optimization is the graph optimization level.
	Optimization Optimization
	// Config holds session config entries, for example
	// "optimization.disable_specified_optimizers".
	Config map[string]string
	// Outputs restricts the outputs the session computes (default: all).
	Outputs []string
	// NoMemArena makes ONNX Runtime return memory after each run instead
	// of keeping its arena at the high-water mark: for graphs with large
	// transient tensors (the [batch, seq, vocab] loss head) run from several
	// sessions in one process.
	NoMemArena bool
	// Diagnostics: ONNX Runtime's log level, per-node profiling and strict
	// placement. Unset fields take DARTC_ORT_LOG, DARTC_ORT_PROFILE and
	// DARTC_ORT_STRICT from the environment.
	Diagnostics Diagnostics
}

// IOInfo describes a graph input or output.
type IOInfo struct {
	Name  string
	DType DType
	// Dims are the declared dims, -1 where symbolic.
	Dims []int64
	// Params name the symbolic dims ("batch_size"), "" for fixed or unnamed.
	Params []string
	// Unranked is set when the graph declares no shape at all: any rank is
	// accepted, and outputs are never allocated ahead of the run.
	Unranked bool
}

func (io IOInfo) String() string {
	parts := make([]string, len(io.Dims))
	for i, d := range io.Dims {
		switch {
		case d >= 0:
			parts[i] = strconv.FormatInt(d, 10)
		case io.Params[i] != "":
			parts[i] = io.Params[i]
		default:
			parts[i] = "?"
		}
	}
	return fmt.Sprintf("%s %v[%s]", io.Name, io.DType, strings.Join(parts, ","))
}

// Session is an ONNX Runtime inference session over one .onnx file.
type Session struct {
	path    string
	sess    *ort.DynamicAdvancedSession
	inputs  []IOInfo
	outputs []IOInfo
	// runTime accumulates the wall time spent inside ONNX Runtime's Run.
	runTime time.Duration
}

// NewSession opens the model at path. Init is called if needed.
func NewSession(path string, opts *Options) (*Session, error) {
	if opts == nil {
		opts = &Options{}
	}
	if _, err := InitFor(opts.Device); err != nil {
		return nil, err
	}
	s := &Session{path: path}
	var err error
	if s.inputs, s.outputs, err = graphIO(path); err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", path, err)
	}
	if len(opts.Outputs) > 0 {
		var kept []IOInfo
		for _, name := range opts.Outputs {
			o, ok := find(s.outputs, name)
			if !ok {
				return nil, fmt.Errorf("runtime: open %s: no output %q (outputs: %s)", path, name, names(s.outputs))
			}
			kept = append(kept, o)
		}
		s.outputs = kept
	}
	opts = withFloat64Config(opts, s.inputs, s.outputs)
	so, err := sessionOptions(opts)
	if errors.Is(err, ErrNoCUDA) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", path, err)
	}
	defer so.Destroy()
	s.sess, err = ort.NewDynamicAdvancedSession(path, names(s.inputs), names(s.outputs), so)
	if err != nil {
		if opts.Device == DeviceCUDA {
			return nil, cudaError(err)
		}
		return nil, fmt.Errorf("runtime: open %s: %w", path, err)
	}
	return s, nil
}

// ForGraph returns base with the session settings the manifest records for
// a compiled graph: its config entries (added to base's) and its
// optimization level. Every caller that opens a compiled graph goes through
// it, so that a trainer and a benchmark open a graph the same way.
func ForGraph(spec *manifest.Graph, base Options) (*Options, error) {
	o := base
	if len(spec.SessionConfig) > 0 {
		o.Config = map[string]string{}
		for k, v := range base.Config {
			o.Config[k] = v
		}
		for k, v := range spec.SessionConfig {
			o.Config[k] = v
		}
	}
	switch spec.Optimization {
	case "":
	case manifest.OptimizationNone:
		o.Optimization = OptimizeNone
	default:
		return nil, fmt.Errorf("runtime: %s: unknown ort_optimization %q in the manifest (want %q or none); recompile the model with this dartc",
			spec.File, spec.Optimization, manifest.OptimizationNone)
	}
	return &o, nil
}

// DisableOptimizersKey is the session config entry that lists ONNX Runtime
// optimizers to skip.
const DisableOptimizersKey = "optimization.disable_specified_optimizers"

// Float64DisabledOptimizers are the ONNX Runtime optimizers a float64 graph
// runs without: their fused kernels exist for float32 only, so a session
// with them refuses the graph ("Failed to find kernel for QuickGelu").
const Float64DisabledOptimizers = "QuickGeluFusion;SimplifiedLayerNormFusion"

// withFloat64Config returns opts with Float64DisabledOptimizers added when
// the graph computes in float64 — a float input is float64, or it has no
// float input and all its float outputs are float64 (a model without a
// cache) — and the caller chose no optimizers to disable (a compiled
// graph's manifest says the same). A float32 graph with a float64 side
// output keeps ORT's fusions.
func withFloat64Config(opts *Options, inputs, outputs []IOInfo) *Options {
	if _, set := opts.Config[DisableOptimizersKey]; set || !computesFloat64(inputs, outputs) {
		return opts
	}
	o := *opts
	o.Config = map[string]string{DisableOptimizersKey: Float64DisabledOptimizers}
	for k, v := range opts.Config {
		o.Config[k] = v
	}
	return &o
}

func computesFloat64(inputs, outputs []IOInfo) bool {
	isFloat := func(d DType) bool { return d == Float32 || d == Float64 || d == Float16 || d == BFloat16 }
	for _, in := range inputs {
		if isFloat(in.DType) {
			return in.DType == Float64
		}
	}
	seen := false
	for _, o := range outputs {
		if isFloat(o.DType) {
			if o.DType != Float64 {
				return false
			}
			seen = true
		}
	}
	return seen
}

func cudaError(err error) error {
	return fmt.Errorf("%w: %v\n%s", ErrNoCUDA, err, CheckCUDA(false).Explain())
}

func sessionOptions(opts *Options) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ort.SessionOptions, error) { so.Destroy(); return nil, err }
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return fail(fmt.Errorf("intra-op threads: %w", err))
		}
	}
	if opts.NoMemArena {
		if err := so.SetCpuMemArena(false); err != nil {
			return fail(fmt.Errorf("memory arena: %w", err))
		}
	}
	level := map[Optimization]ort.GraphOptimizationLevel{
		OptimizeAll: ort.GraphOptimizationLevelEnableAll, OptimizeNone: ort.GraphOptimizationLevelDisableAll,
		OptimizeBasic: ort.GraphOptimizationLevelEnableBasic, OptimizeExtended: ort.GraphOptimizationLevelEnableExtended,
	}
	lv, ok := level[opts.Optimization]
	if !ok {
		return fail(fmt.Errorf("unknown optimization level %d", opts.Optimization))
	}
	if err := so.SetGraphOptimizationLevel(lv); err != nil {
		return fail(fmt.Errorf("optimization level: %w", err))
	}
	keys := make([]string, 0, len(opts.Config))
	for k := range opts.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := so.AddSessionConfigEntry(k, opts.Config[k]); err != nil {
			return fail(fmt.Errorf("session config %s=%s: %w", k, opts.Config[k], err))
		}
	}
	if err := applyDiagnostics(so, opts); err != nil {
		return fail(err)
	}
	switch opts.Device {
	case "", DeviceCPU:
	case DeviceCUDA:
		cuda, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return fail(cudaError(err))
		}
		defer cuda.Destroy()
		if err := cuda.Update(map[string]string{"device_id": strconv.Itoa(opts.CUDADevice)}); err != nil {
			return fail(cudaError(err))
		}
		if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
			return fail(cudaError(err))
		}
	default:
		return fail(fmt.Errorf("unknown device %q (want cpu or cuda)", opts.Device))
	}
	return so, nil
}

func names(ios []IOInfo) []string {
	out := make([]string, len(ios))
	for i, io := range ios {
		out[i] = io.Name
	}
	return out
}

func find(ios []IOInfo, name string) (IOInfo, bool) {
	for _, io := range ios {
		if io.Name == name {
			return io, true
		}
	}
	return IOInfo{}, false
}

// Path returns the model file the session was opened from.
func (s *Session) Path() string { return s.path }

// Inputs describes the graph inputs, in graph order.
func (s *Session) Inputs() []IOInfo { return append([]IOInfo(nil), s.inputs...) }

// Outputs describes the outputs the session computes, in order.
func (s *Session) Outputs() []IOInfo { return append([]IOInfo(nil), s.outputs...) }

// Input returns the named input's description.
func (s *Session) Input(name string) (IOInfo, bool) { return find(s.inputs, name) }

// Output returns the named output's description.
func (s *Session) Output(name string) (IOInfo, bool) { return find(s.outputs, name) }

// RunTime returns the total wall time spent inside ONNX Runtime's Run so far.
func (s *Session) RunTime() time.Duration { return s.runTime }

// Destroy releases the ONNX Runtime session. It is safe to call twice.
func (s *Session) Destroy() error {
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	return err
}

// Run feeds every graph input and returns the named outputs (all of the
// session's outputs when names is empty). Outputs whose shape the inputs'
// symbolic dims determine are written in place; others are allocated by
// ONNX Runtime and copied.
func (s *Session) Run(inputs map[string]*Tensor, outputNames ...string) (map[string]*Tensor, error) {
	return s.RunInto(inputs, nil, outputNames...)
}

// RunInto is Run with caller-allocated outputs: ONNX Runtime writes into
// each tensor of into, which must be keyed by one of the session's outputs
// and have its dtype and the shape the graph produces. The result map holds
// those tensors and the other requested outputs.
func (s *Session) RunInto(inputs, into map[string]*Tensor, outputNames ...string) (map[string]*Tensor, error) {
	if s.sess == nil {
		return nil, fmt.Errorf("runtime: run %s: session destroyed", s.path)
	}
	if len(outputNames) == 0 {
		outputNames = names(s.outputs)
	}
	want := map[string]bool{}
	for _, n := range outputNames {
		if _, ok := find(s.outputs, n); !ok {
			return nil, fmt.Errorf("runtime: run %s: no output %q (outputs: %s)", s.path, n, strings.Join(names(s.outputs), ", "))
		}
		want[n] = true
	}
	// A buffer under a name that is no output would be left unwritten, the
	// caller reading stale values (a typo, or an output Options.Outputs
	// dropped): refuse it, as BoundSession does.
	for n := range into {
		if _, ok := find(s.outputs, n); !ok {
			return nil, fmt.Errorf("runtime: run %s: output buffer %q names no output of the session (outputs: %s); fix the name, or keep the output in Options.Outputs",
				s.path, n, strings.Join(names(s.outputs), ", "))
		}
	}
	bound, err := s.checkInputs(inputs)
	if err != nil {
		return nil, fmt.Errorf("runtime: run %s: %w", s.path, err)
	}

	var values []ort.Value
	defer func() {
		for _, v := range values {
			if !nilValue(v) {
				v.Destroy()
			}
		}
	}()
	in := make([]ort.Value, len(s.inputs))
	for i, io := range s.inputs {
		v, err := ortValue(inputs[io.Name])
		if err != nil {
			return nil, fmt.Errorf("runtime: run %s: input %s: %w", s.path, io.Name, err)
		}
		values = append(values, v)
		in[i] = v
	}
	result := map[string]*Tensor{}
	out := make([]ort.Value, len(s.outputs))
	for i, io := range s.outputs {
		t := into[io.Name]
		if t == nil {
			if shape, ok := resolve(io, bound); ok {
				t = NewTensor(io.DType, shape...)
			} else if io.DType == Float16 || io.DType == BFloat16 {
				return nil, fmt.Errorf("runtime: run %s: output %s: cannot derive its shape from the inputs' dims, "+
					"and onnxruntime_go v1.27.0 cannot allocate %v outputs itself: pre-allocate it with RunInto", s.path, io, io.DType)
			}
		} else if err := checkTensor(io, t, nil); err != nil {
			return nil, fmt.Errorf("runtime: run %s: output buffer: %w", s.path, err)
		}
		if t == nil {
			continue // ONNX Runtime allocates it
		}
		v, err := ortValue(t)
		if err != nil {
			return nil, fmt.Errorf("runtime: run %s: output %s: %w", s.path, io.Name, err)
		}
		values = append(values, v)
		out[i] = v
		result[io.Name] = t
	}

	start := time.Now()
	err = s.sess.Run(in, out)
	s.runTime += time.Since(start)
	if err == nil {
		// Host tensors cross whole: every input in, every output back.
		for _, io := range s.inputs {
			countTransfer(io.Name, len(inputs[io.Name].bytes), true)
		}
	}
	for i, io := range s.outputs {
		if t := result[io.Name]; t != nil && len(t.shape) == 0 && out[i] != nil {
			scalarBack(out[i], t)
		}
	}
	// Values ONNX Runtime allocated are Go copies now; release them too.
	for i, io := range s.outputs {
		if _, ours := result[io.Name]; ours || nilValue(out[i]) {
			continue
		}
		values = append(values, out[i])
		if err == nil {
			t, cerr := fromORT(out[i], io.DType)
			if cerr != nil {
				return nil, fmt.Errorf("runtime: run %s: output %s: %w", s.path, io.Name, cerr)
			}
			result[io.Name] = t
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "shape has no dimensions") {
			return nil, fmt.Errorf("runtime: run %s: %w (an output of undeclared rank came back rank 0, which onnxruntime_go cannot wrap: declare the output's shape in the graph)", s.path, err)
		}
		return nil, fmt.Errorf("runtime: run %s: %w", s.path, err)
	}
	for name, t := range result {
		countTransfer(name, len(t.bytes), false)
	}
	for name := range result {
		if !want[name] {
			delete(result, name)
		}
	}
	return result, nil
}

// checkInputs validates inputs against the graph and returns the values
// the symbolic dims take.
func (s *Session) checkInputs(inputs map[string]*Tensor) (map[string]int64, error) {
	var missing []string
	for _, io := range s.inputs {
		if inputs[io.Name] == nil {
			missing = append(missing, io.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing input(s) %s", strings.Join(missing, "; "))
	}
	for name := range inputs {
		if _, ok := find(s.inputs, name); !ok {
			return nil, fmt.Errorf("unknown input %q (the graph's inputs: %s)", name, strings.Join(names(s.inputs), ", "))
		}
	}
	bound := map[string]int64{}
	for _, io := range s.inputs {
		if err := checkTensor(io, inputs[io.Name], bound); err != nil {
			return nil, err
		}
	}
	return bound, nil
}

// checkTensor checks t against io's dtype and dims; symbolic dims are
// recorded in bound (when not nil) and must agree with earlier inputs.
func checkTensor(io IOInfo, t *Tensor, bound map[string]int64) error {
	return checkShape(io, t.dtype, t.shape, bound)
}

// checkShape is checkTensor for a value of dtype dt and the given shape.
func checkShape(io IOInfo, dt DType, shape []int64, bound map[string]int64) error {
	if dt != io.DType {
		return fmt.Errorf("%s: got %v%v, want %v", io.Name, dt, shape, io)
	}
	if io.Unranked {
		return nil
	}
	if len(shape) != len(io.Dims) {
		return fmt.Errorf("%s: got shape %v (rank %d), want %v (rank %d)", io.Name, shape, len(shape), io, len(io.Dims))
	}
	for i, d := range io.Dims {
		got := shape[i]
		if d >= 0 && got != d {
			return fmt.Errorf("%s: dim %d is %d, want %d (%v)", io.Name, i, got, d, io)
		}
		if p := io.Params[i]; d < 0 && p != "" && bound != nil {
			if prev, ok := bound[p]; ok && prev != got {
				return fmt.Errorf("%s: dim %d (%s) is %d, but another input set %s = %d", io.Name, i, p, got, p, prev)
			}
			bound[p] = got
		}
	}
	return nil
}

// resolve returns io's concrete shape when every symbolic dim is bound.
func resolve(io IOInfo, bound map[string]int64) ([]int64, bool) {
	if io.Unranked {
		return nil, false
	}
	shape := make([]int64, len(io.Dims))
	for i, d := range io.Dims {
		if d >= 0 {
			shape[i] = d
			continue
		}
		v, ok := bound[io.Params[i]]
		if io.Params[i] == "" || !ok {
			return nil, false
		}
		shape[i] = v
	}
	return shape, true
}

// emptyBacking stands in for a zero-element tensor's storage: ONNX Runtime
// accepts a larger buffer than the shape needs, never an empty one.
var emptyBacking = make([]byte, 8)

func ortValue(t *Tensor) (ort.Value, error) {
	if len(t.shape) == 0 {
		return ortScalar(t)
	}
	shape := ort.NewShape(t.shape...)
	data := t.bytes
	if len(data) == 0 {
		data = emptyBacking
	}
	return ort.NewCustomDataTensor(shape, data, t.dtype.ort())
}

// nilValue reports whether v is nil or holds a nil pointer: onnxruntime_go
// leaves a typed nil in an output slot it failed to fill, and Destroy on it
// would panic instead of the run returning its error.
func nilValue(v ort.Value) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Pointer && r.IsNil()
}

// ortScalar wraps a rank-0 tensor: onnxruntime_go's Tensor refuses an
// empty shape, its Scalar carries the value instead.
func ortScalar(t *Tensor) (ort.Value, error) {
	switch t.dtype {
	case Float32:
		return ort.NewScalar(t.Float32()[0])
	case Float64:
		return ort.NewScalar(t.Float64()[0])
	case Int64:
		return ort.NewScalar(t.Int64()[0])
	case Int32:
		return ort.NewScalar(t.Int32()[0])
	case Bool:
		return ort.NewScalar(t.Bool()[0])
	}
	return nil, fmt.Errorf("rank-0 %v tensors are not supported", t.dtype)
}

// scalarBack copies a rank-0 output written into an ortScalar value back to
// its tensor.
func scalarBack(v ort.Value, t *Tensor) {
	switch x := v.(type) {
	case *ort.Scalar[float32]:
		t.Float32()[0] = x.GetData()
	case *ort.Scalar[float64]:
		t.Float64()[0] = x.GetData()
	case *ort.Scalar[int64]:
		t.Int64()[0] = x.GetData()
	case *ort.Scalar[int32]:
		t.Int32()[0] = x.GetData()
	case *ort.Scalar[bool]:
		t.Bool()[0] = x.GetData()
	}
}

// fromORT copies a value ONNX Runtime allocated into a Tensor.
func fromORT(v ort.Value, dt DType) (*Tensor, error) {
	shape := []int64(v.GetShape())
	t := NewTensor(dt, shape...)
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		copy(t.Float32(), x.GetData())
	case *ort.Tensor[float64]:
		copy(t.Float64(), x.GetData())
	case *ort.Tensor[int64]:
		copy(t.Int64(), x.GetData())
	case *ort.Tensor[int32]:
		copy(t.Int32(), x.GetData())
	case *ort.Tensor[bool]:
		copy(t.Bool(), x.GetData())
	default:
		return nil, fmt.Errorf("unexpected %T for a %v output", v, dt)
	}
	return t, nil
}
