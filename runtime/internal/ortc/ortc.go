package ortc

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "ortc.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// APIVersion is the C API version the layer asks for.
const APIVersion = 24

// Log levels (OrtLoggingLevel).
const (
	LogVerbose = 0
	LogInfo    = 1
	LogWarning = 2
	LogError   = 3
	LogFatal   = 4
)

// Element types (ONNXTensorElementDataType).
const (
	ElemFloat32  = 1
	ElemInt32    = 6
	ElemInt64    = 7
	ElemBool     = 9
	ElemFloat16  = 10
	ElemFloat64  = 11
	ElemBFloat16 = 16
)

// Graph optimization levels (GraphOptimizationLevel).
const (
	OptDisableAll = 0
	OptBasic      = 1
	OptExtended   = 2
	OptAll        = 99
)

var (
	openMu  sync.Mutex
	openLib string
	env     unsafe.Pointer
)

func status(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return errors.New(C.GoString(msg))
}

// Open loads the library at path (idempotent: a second call with another
// path is an error) and obtains the process-wide environment.
func Open(path string) error {
	openMu.Lock()
	defer openMu.Unlock()
	if openLib != "" {
		if openLib != path {
			return fmt.Errorf("ortc: open %s: %s is already loaded", path, openLib)
		}
		return nil
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if err := status(C.ortc_open(cp, APIVersion)); err != nil {
		return fmt.Errorf("ortc: open %s: %w", path, err)
	}
	var e C.ortc_handle
	if err := status(C.ortc_create_env(LogError, &e)); err != nil {
		return fmt.Errorf("ortc: environment: %w", err)
	}
	env, openLib = unsafe.Pointer(e), path
	return nil
}

// Version returns the loaded library's version.
func Version() string { return C.GoString(C.ortc_version()) }

// AvailableProviders lists the execution providers the library was built
// with (GetAvailableProviders): built in, not necessarily loadable.
func AvailableProviders() ([]string, error) {
	var p **C.char
	var n C.int
	if err := status(C.ortc_available_providers(&p, &n)); err != nil {
		return nil, fmt.Errorf("ortc: available providers: %w", err)
	}
	defer C.ortc_release_providers(p, n)
	out := make([]string, int(n))
	for i, s := range unsafe.Slice(p, int(n)) {
		out[i] = C.GoString(s)
	}
	return out, nil
}

// Probe reports whether the dynamic loader can load the library name, the
// way ONNX Runtime's CUDA provider would (LD_LIBRARY_PATH, the loader
// cache, the system directories).
func Probe(name string) error {
	p := C.CString(name)
	defer C.free(unsafe.Pointer(p))
	return status(C.ortc_probe(p))
}

// SessionOptions configure a session.
type SessionOptions struct{ h C.ortc_handle }

// NewSessionOptions returns ONNX Runtime's default options.
func NewSessionOptions() (*SessionOptions, error) {
	so := &SessionOptions{}
	if err := status(C.ortc_create_session_options(&so.h)); err != nil {
		return nil, fmt.Errorf("ortc: session options: %w", err)
	}
	return so, nil
}

// Release frees the options.
func (so *SessionOptions) Release() {
	if so.h != nil {
		C.ortc_release_session_options(so.h)
		so.h = nil
	}
}

// IntraOpThreads sets the threads per operator.
func (so *SessionOptions) IntraOpThreads(n int) error {
	return wrap("intra-op threads", status(C.ortc_set_intra_op_threads(so.h, C.int(n))))
}

// Optimization sets the graph optimization level (Opt*).
func (so *SessionOptions) Optimization(level int) error {
	return wrap("optimization level", status(C.ortc_set_optimization_level(so.h, C.int(level))))
}

// DisableCPUMemArena makes the CPU allocator return memory after each run.
func (so *SessionOptions) DisableCPUMemArena() error {
	return wrap("memory arena", status(C.ortc_disable_cpu_mem_arena(so.h)))
}

// Config adds a session config entry.
func (so *SessionOptions) Config(key, value string) error {
	k, v := C.CString(key), C.CString(value)
	defer C.free(unsafe.Pointer(k))
	defer C.free(unsafe.Pointer(v))
	return wrap("session config "+key+"="+value, status(C.ortc_add_config_entry(so.h, k, v)))
}

// Profile enables ONNX Runtime's profiler; the JSON trace is written to
// prefix_<date>.json when Session.EndProfiling is called.
func (so *SessionOptions) Profile(prefix string) error {
	p := C.CString(prefix)
	defer C.free(unsafe.Pointer(p))
	return wrap("profiling", status(C.ortc_enable_profiling(so.h, p)))
}

// LogSeverity sets the session's log level (Log*) and names its log lines.
func (so *SessionOptions) LogSeverity(level int, id string) error {
	if err := status(C.ortc_set_log_severity(so.h, C.int(level))); err != nil {
		return wrap("log level", err)
	}
	p := C.CString(id)
	defer C.free(unsafe.Pointer(p))
	return wrap("log id", status(C.ortc_set_log_id(so.h, p)))
}

// AppendCUDA adds the CUDA execution provider with its options
// (device_id, ...).
func (so *SessionOptions) AppendCUDA(options map[string]string) error {
	keys := make([]*C.char, 0, len(options))
	vals := make([]*C.char, 0, len(options))
	for k, v := range options {
		keys = append(keys, C.CString(k))
		vals = append(vals, C.CString(v))
	}
	defer func() {
		for i := range keys {
			C.free(unsafe.Pointer(keys[i]))
			C.free(unsafe.Pointer(vals[i]))
		}
	}()
	ck := (**C.char)(C.malloc(C.size_t(len(keys)+1) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	cv := (**C.char)(C.malloc(C.size_t(len(keys)+1) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(ck))
	defer C.free(unsafe.Pointer(cv))
	copy(unsafe.Slice(ck, len(keys)), keys)
	copy(unsafe.Slice(cv, len(keys)), vals)
	return wrap("CUDA execution provider", status(C.ortc_append_cuda(so.h, ck, cv, C.size_t(len(keys)))))
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ortc: %s: %w", op, err)
}

// Session is an inference session created by this layer.
type Session struct{ h C.ortc_handle }

func checkOpen() error {
	if env == nil {
		return errors.New("ortc: the library is not open (call Open)")
	}
	return nil
}

// NewSession opens the model file at path.
func NewSession(path string, so *SessionOptions) (*Session, error) {
	if err := checkOpen(); err != nil {
		return nil, err
	}
	p := C.CString(path)
	defer C.free(unsafe.Pointer(p))
	s := &Session{}
	if err := status(C.ortc_create_session(C.ortc_handle(env), p, so.h, &s.h)); err != nil {
		return nil, fmt.Errorf("ortc: create session %s: %w", path, err)
	}
	return s, nil
}

// NewSessionFromBytes opens a serialized model.
func NewSessionFromBytes(model []byte, so *SessionOptions) (*Session, error) {
	if err := checkOpen(); err != nil {
		return nil, err
	}
	if len(model) == 0 {
		return nil, errors.New("ortc: create session: empty model")
	}
	cm := C.CBytes(model)
	defer C.free(cm)
	s := &Session{}
	if err := status(C.ortc_create_session_from_bytes(C.ortc_handle(env), cm, C.size_t(len(model)), so.h, &s.h)); err != nil {
		return nil, fmt.Errorf("ortc: create session: %w", err)
	}
	return s, nil
}

// Release frees the session.
func (s *Session) Release() {
	if s.h != nil {
		C.ortc_release_session(s.h)
		s.h = nil
	}
}

// EndProfiling writes the profile and returns its file name.
func (s *Session) EndProfiling() (string, error) {
	var out *C.char
	if err := status(C.ortc_end_profiling(s.h, &out)); err != nil {
		return "", wrap("end profiling", err)
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoString(out), nil
}

// MemoryInfo names a memory location: the CPU or a CUDA device.
type MemoryInfo struct {
	h C.ortc_handle
	// CUDA reports device memory (copies need the CUDA runtime).
	CUDA bool
}

// CPUMemory returns the host memory info.
func CPUMemory() (*MemoryInfo, error) {
	m := &MemoryInfo{}
	if err := status(C.ortc_create_cpu_memory_info(&m.h)); err != nil {
		return nil, wrap("cpu memory info", err)
	}
	return m, nil
}

// CUDAMemory returns the memory info of CUDA device id.
func CUDAMemory(id int) (*MemoryInfo, error) {
	name := C.CString("Cuda")
	defer C.free(unsafe.Pointer(name))
	m := &MemoryInfo{CUDA: true}
	if err := status(C.ortc_create_memory_info(name, C.int(id), &m.h)); err != nil {
		return nil, wrap("cuda memory info", err)
	}
	return m, nil
}

// Release frees the memory info.
func (m *MemoryInfo) Release() {
	if m.h != nil {
		C.ortc_release_memory_info(m.h)
		m.h = nil
	}
}

// Allocator allocates tensors in one memory location.
type Allocator struct {
	h     C.ortc_handle
	owned bool
	Mem   *MemoryInfo
}

// NewAllocator returns the session's allocator for mem.
func (s *Session) NewAllocator(mem *MemoryInfo) (*Allocator, error) {
	a := &Allocator{owned: true, Mem: mem}
	if err := status(C.ortc_create_allocator(s.h, mem.h, &a.h)); err != nil {
		return nil, wrap("allocator", err)
	}
	return a, nil
}

// Release frees the allocator (not the process-wide default one).
func (a *Allocator) Release() {
	if a.h != nil && a.owned {
		C.ortc_release_allocator(a.h)
	}
	a.h = nil
}

// DefaultAllocator returns ONNX Runtime's process-wide CPU allocator (mem
// must be host memory); Release leaves it alone.
func DefaultAllocator(mem *MemoryInfo) (*Allocator, error) {
	h, err := defaultAllocator()
	if err != nil {
		return nil, err
	}
	return &Allocator{h: h, Mem: mem}, nil
}

func defaultAllocator() (C.ortc_handle, error) {
	var h C.ortc_handle
	if err := status(C.ortc_default_allocator(&h)); err != nil {
		return nil, wrap("default allocator", err)
	}
	return h, nil
}

// Value is an ONNX Runtime tensor (an OrtValue) and its memory location.
type Value struct {
	h    C.ortc_handle
	cuda bool
}

// NewTensor allocates an uninitialised tensor with a.
func (a *Allocator) NewTensor(elem int, shape []int64) (*Value, error) {
	dims := append(shape[:len(shape):len(shape)], 0) // never empty, so &dims[0] is valid for rank 0
	v := &Value{cuda: a.Mem.CUDA}
	if err := status(C.ortc_create_tensor(a.h, (*C.int64_t)(unsafe.Pointer(&dims[0])),
		C.size_t(len(shape)), C.int(elem), &v.h)); err != nil {
		return nil, wrap(fmt.Sprintf("allocate tensor %v", shape), err)
	}
	runtime.KeepAlive(dims)
	return v, nil
}

// Release frees the tensor.
func (v *Value) Release() {
	if v != nil && v.h != nil {
		C.ortc_release_value(v.h)
		v.h = nil
	}
}

// OnCUDA reports whether the tensor lives in CUDA memory.
func (v *Value) OnCUDA() bool { return v.cuda }

// Shape returns the tensor's element type and dims.
func (v *Value) Shape() (int, []int64, error) {
	var elem C.int
	var dims [16]int64
	var rank C.size_t
	if err := status(C.ortc_tensor_shape(v.h, &elem, (*C.int64_t)(unsafe.Pointer(&dims[0])), 16, &rank)); err != nil {
		return 0, nil, wrap("tensor shape", err)
	}
	return int(elem), append([]int64(nil), dims[:rank]...), nil
}

func (v *Value) data() (unsafe.Pointer, error) {
	var p unsafe.Pointer
	if err := status(C.ortc_tensor_data(v.h, &p)); err != nil {
		return nil, wrap("tensor data", err)
	}
	return p, nil
}

func kind(cuda bool) C.int {
	if cuda {
		return 1
	}
	return 0
}

// Upload copies len(src) bytes from Go memory into the tensor.
func (v *Value) Upload(src []byte) error {
	if len(src) == 0 {
		return nil
	}
	p, err := v.data()
	if err != nil {
		return err
	}
	return wrap("upload", status(C.ortc_copy(kind(v.cuda), p, unsafe.Pointer(&src[0]), C.size_t(len(src)))))
}

// Download copies len(dst) bytes of the tensor into Go memory.
func (v *Value) Download(dst []byte) error {
	if len(dst) == 0 {
		return nil
	}
	p, err := v.data()
	if err != nil {
		return err
	}
	return wrap("download", status(C.ortc_copy(kind(v.cuda), unsafe.Pointer(&dst[0]), p, C.size_t(len(dst)))))
}

// Zero fills the first n bytes of the tensor with zeros, on its device.
func (v *Value) Zero(n int) error {
	if n == 0 {
		return nil
	}
	p, err := v.data()
	if err != nil {
		return err
	}
	return wrap("zero", status(C.ortc_zero(kind(v.cuda), p, C.size_t(n))))
}

// CopyFrom copies n bytes from src's memory to v's, on the device when
// either is in CUDA memory: nothing passes through Go.
func (v *Value) CopyFrom(src *Value, n int) error {
	if n == 0 {
		return nil
	}
	dp, err := v.data()
	if err != nil {
		return err
	}
	sp, err := src.data()
	if err != nil {
		return err
	}
	return wrap("device copy", status(C.ortc_copy(kind(v.cuda || src.cuda), dp, sp, C.size_t(n))))
}

// CopyChunks copies chunks between src's memory and v's in one call, on
// the device when either is in CUDA memory: chunk i is chunks[3i+2] bytes
// from src at byte offset chunks[3i+1] to v at byte offset chunks[3i]. The
// caller keeps every chunk inside both tensors.
func (v *Value) CopyChunks(src *Value, chunks []int64) error {
	if len(chunks) == 0 {
		return nil
	}
	if len(chunks)%3 != 0 {
		return fmt.Errorf("ortc: copy chunks: %d numbers, not triples", len(chunks))
	}
	dp, err := v.data()
	if err != nil {
		return err
	}
	sp, err := src.data()
	if err != nil {
		return err
	}
	err = status(C.ortc_copy_chunks(kind(v.cuda || src.cuda), dp, sp, (*C.int64_t)(unsafe.Pointer(&chunks[0])), C.size_t(len(chunks)/3)))
	runtime.KeepAlive(chunks)
	return wrap("device copy", err)
}

// DataPointer returns the address of the tensor's memory (to check that a
// buffer is reused across runs; never dereferenced from Go).
func (v *Value) DataPointer() (uintptr, error) {
	p, err := v.data()
	return uintptr(p), err
}

// Binding is an IoBinding: the inputs and outputs of a session's runs.
type Binding struct {
	s  *Session
	h  C.ortc_handle
	ro C.ortc_handle
}

// NewBinding creates an IoBinding on s.
func (s *Session) NewBinding() (*Binding, error) {
	b := &Binding{s: s}
	if err := status(C.ortc_create_io_binding(s.h, &b.h)); err != nil {
		return nil, wrap("io binding", err)
	}
	if err := status(C.ortc_create_run_options(&b.ro)); err != nil {
		C.ortc_release_io_binding(b.h)
		return nil, wrap("run options", err)
	}
	return b, nil
}

// Release frees the binding.
func (b *Binding) Release() {
	if b.h != nil {
		C.ortc_release_io_binding(b.h)
		C.ortc_release_run_options(b.ro)
		b.h, b.ro = nil, nil
	}
}

// Input binds the named input to v.
func (b *Binding) Input(name string, v *Value) error {
	p := C.CString(name)
	defer C.free(unsafe.Pointer(p))
	return wrap("bind input "+name, status(C.ortc_bind_input(b.h, p, v.h)))
}

// Output binds the named output to the pre-allocated v: the run writes it
// in place.
func (b *Binding) Output(name string, v *Value) error {
	p := C.CString(name)
	defer C.free(unsafe.Pointer(p))
	return wrap("bind output "+name, status(C.ortc_bind_output(b.h, p, v.h)))
}

// OutputTo binds the named output to memory mem: ONNX Runtime allocates it
// there at each run; BoundOutputs returns it.
func (b *Binding) OutputTo(name string, mem *MemoryInfo) error {
	p := C.CString(name)
	defer C.free(unsafe.Pointer(p))
	return wrap("bind output "+name, status(C.ortc_bind_output_to_device(b.h, p, mem.h)))
}

// Run runs the session over the bound inputs and outputs.
func (b *Binding) Run() error {
	return wrap("run", status(C.ortc_run_with_binding(b.s.h, b.ro, b.h)))
}

// Outputs returns the bound outputs in binding order, as new Values the
// caller releases (they share memory with the bound ones). cuda marks
// values in CUDA memory.
func (b *Binding) Outputs(cuda []bool) ([]*Value, error) {
	alloc, err := defaultAllocator()
	if err != nil {
		return nil, err
	}
	var vals *C.ortc_handle
	var n C.size_t
	if err := status(C.ortc_bound_outputs(b.h, alloc, &vals, &n)); err != nil {
		return nil, wrap("bound outputs", err)
	}
	defer C.ortc_free_bound_outputs(alloc, vals)
	out := make([]*Value, int(n))
	for i, h := range unsafe.Slice(vals, int(n)) {
		out[i] = &Value{h: h, cuda: i < len(cuda) && cuda[i]}
	}
	return out, nil
}

// ClearInputs and ClearOutputs forget the bindings.
func (b *Binding) ClearInputs()  { C.ortc_clear_bound_inputs(b.h) }
func (b *Binding) ClearOutputs() { C.ortc_clear_bound_outputs(b.h) }

// SyncInputs waits until the bound inputs are on the device;
// SyncOutputs until the outputs are written.
func (b *Binding) SyncInputs() error {
	return wrap("sync inputs", status(C.ortc_sync_bound_inputs(b.h)))
}
func (b *Binding) SyncOutputs() error {
	return wrap("sync outputs", status(C.ortc_sync_bound_outputs(b.h)))
}
