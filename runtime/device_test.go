package runtime_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dartc/dartc/internal/npz"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/runtime"
)

func TestProvidersListCPU(t *testing.T) {
	orttest.Init(t)
	ps, err := runtime.Providers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ps, "CPUExecutionProvider") {
		t.Fatalf("providers %v lack CPUExecutionProvider", ps)
	}
	t.Log(ps)
}

func TestDeviceTensorRoundTrip(t *testing.T) {
	orttest.Init(t)
	dev, err := runtime.OpenDevice(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	a, err := dev.NewTensor("a", runtime.Float64, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Destroy()
	zero, err := a.Download()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range zero.Float64() {
		if v != 0 {
			t.Fatalf("a new device tensor holds %v, want zeros", zero.Float64())
		}
	}
	host, _ := runtime.FromFloat64([]int64{2, 3}, []float64{1, -2, math.Pi, math.Inf(1), 5e-300, -0.0})
	runtime.ResetTransferStats()
	if err := a.Upload(host); err != nil {
		t.Fatal(err)
	}
	b, err := dev.NewTensor("b", runtime.Float64, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	if err := b.CopyFrom(a); err != nil {
		t.Fatal(err)
	}
	back, err := b.Download()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Bytes(), host.Bytes()) {
		t.Fatalf("round trip gave %v, want %v", back.Float64(), host.Float64())
	}
	st := runtime.TransferStats()
	if st.ToORT != 48 || st.FromORT != 48 || st.ByName["a"] != 48 || st.ByName["b"] != 48 {
		t.Fatalf("transfers %+v, want 48 bytes up (a) and 48 down (b), the device copy uncounted", st)
	}
	if err := a.Upload(runtime.NewTensor(runtime.Float32, 2, 3)); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Fatalf("uploading a float32 tensor into a float64 one: err = %v", err)
	}
}

// TestBoundSessionKeepsKVOnDevice runs the static-cache decoder's prefill
// and decode twice: through the host-tensor Session (every cache copied in
// and out) and through a BoundSession whose caches stay in device tensors,
// written in place and fed to the next step. Logits and caches must be
// bit-identical, match the golden file, and no cache byte may cross to Go
// after the initial upload.
func TestBoundSessionKeepsKVOnDevice(t *testing.T) {
	orttest.Init(t)
	b, err := os.ReadFile(scatterDir + "/golden_io.npz")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := npz.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	opts := &runtime.Options{IntraOpThreads: 1}
	host, err := runtime.NewSession(scatterDir+"/model.onnx", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Destroy()
	dev, err := runtime.OpenDevice(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	bound, err := runtime.NewBoundSession(scatterDir+"/model.onnx", dev, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer bound.Destroy()

	isCache := func(name string) bool { return strings.Contains(name, "_cache.") }
	// Host path.
	hostIn := map[string]*runtime.Tensor{}
	for _, io := range host.Inputs() {
		hostIn[io.Name] = tensorOf(t, golden["prefill_in."+io.Name])
	}
	hostOut := map[string]map[string]*runtime.Tensor{}
	for _, phase := range []string{"prefill", "decode"} {
		if phase == "decode" {
			for _, io := range host.Inputs() {
				if isCache(io.Name) {
					hostIn[io.Name] = hostOut["prefill"]["updated_"+io.Name]
				} else {
					hostIn[io.Name] = tensorOf(t, golden["decode_in."+io.Name])
				}
			}
		}
		if hostOut[phase], err = host.Run(hostIn); err != nil {
			t.Fatal(err)
		}
	}

	// Device path: two cache sets, read from one and written into the other.
	var caches [2]map[string]*runtime.DeviceTensor
	for i := range caches {
		caches[i] = map[string]*runtime.DeviceTensor{}
		for _, io := range bound.Inputs() {
			if !isCache(io.Name) {
				continue
			}
			init := tensorOf(t, golden["prefill_in."+io.Name])
			d, err := dev.UploadTensor(io.Name, init)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Destroy()
			caches[i][io.Name] = d
		}
	}
	runtime.ResetTransferStats()
	var small int64
	for step, phase := range []string{"prefill", "decode"} {
		read, write := caches[step%2], caches[(step+1)%2]
		in := map[string]runtime.Value{}
		into := map[string]*runtime.DeviceTensor{}
		for _, io := range bound.Inputs() {
			if isCache(io.Name) {
				in[io.Name] = read[io.Name]
				into["updated_"+io.Name] = write[io.Name]
				continue
			}
			x := tensorOf(t, golden[phase+"_in."+io.Name])
			small += int64(len(x.Bytes()))
			in[io.Name] = x
		}
		out, err := bound.Run(in, into, "logits")
		if err != nil {
			t.Fatal(err)
		}
		small += int64(len(out["logits"].Bytes()))
		if !slices.Equal(out["logits"].Bytes(), hostOut[phase]["logits"].Bytes()) {
			t.Fatalf("%s: bound logits differ from the host session's", phase)
		}
		want, _ := golden[phase+"_out.logits"].Float64()
		if maxAbs, _ := goldenClose(out["logits"].Floats(), want); !(maxAbs <= goldenTol) {
			t.Fatalf("%s: logits differ from golden by %.3g", phase, maxAbs)
		}
	}
	st := runtime.TransferStats()
	for name, n := range st.ByName {
		if isCache(name) && n != 0 {
			t.Errorf("%d bytes of %s crossed between Go and ONNX Runtime", n, name)
		}
	}
	if st.ToORT+st.FromORT != small {
		t.Errorf("%d bytes crossed, want %d (ids, positions, indices, logits only): %v", st.ToORT+st.FromORT, small, st.ByName)
	}
	t.Logf("bound path: %d bytes crossed (%v)", small, st.ByName)
	// The caches written on the device equal the host path's after decode.
	for name, d := range caches[0] {
		got, err := d.Download()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Bytes(), hostOut["decode"]["updated_"+name].Bytes()) {
			t.Errorf("device cache %s differs from the host path's", name)
		}
	}
}

func TestBoundSessionRejectsBadFeeds(t *testing.T) {
	orttest.Init(t)
	dev, err := runtime.OpenDevice(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	s, err := runtime.NewBoundSession(scatterDir+"/model.onnx", dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if _, err := s.Run(map[string]runtime.Value{}, nil, "logits"); err == nil || !strings.Contains(err.Error(), "missing input(s) input_ids") {
		t.Fatalf("no inputs: err = %v", err)
	}
	if _, err := runtime.NewBoundSession(scatterDir+"/model.onnx", dev, &runtime.Options{Diagnostics: runtime.Diagnostics{LogLevel: "loud"}}); err == nil ||
		!strings.Contains(err.Error(), "verbose, info, warning, error or fatal") {
		t.Fatalf("bad log level: err = %v", err)
	}
	if _, err := runtime.NewBoundSession(scatterDir+"/model.onnx", dev, &runtime.Options{Device: runtime.DeviceCUDA}); err == nil {
		t.Fatal("a CUDA session on the CPU device was accepted")
	}
}

func TestAccumulatorSumsAndFlagsNonFinite(t *testing.T) {
	orttest.Init(t)
	dev, err := runtime.OpenDevice(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	specs := []runtime.TensorSpec{{Name: "w", DType: runtime.Float32, Shape: []int64{3, 2}}, {Name: "s", DType: runtime.Float32, Shape: []int64{4}}}
	acc, err := runtime.NewAccumulator(dev, nil, specs)
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Destroy()
	mk := func(name string, shape []int64, v []float32) *runtime.DeviceTensor {
		h, _ := runtime.FromFloat32(shape, v)
		d, err := dev.UploadTensor(name, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Destroy)
		return d
	}
	a := []float32{1e8, 1, -2, 0.1, 3, 7}
	g := []float32{1, 1e-8, 2, 0.2, -3, 1e30}
	x, y := []float32{1, 2, 3, 4}, []float32{0.5, 0.25, -1, 1e-3}
	sum := []*runtime.DeviceTensor{mk("sum.w", specs[0].Shape, make([]float32, 6)), mk("sum.s", specs[1].Shape, make([]float32, 4))}
	ok, err := acc.Add(sum, []*runtime.DeviceTensor{mk("a.w", specs[0].Shape, a), mk("a.s", specs[1].Shape, x)},
		[]*runtime.DeviceTensor{mk("g.w", specs[0].Shape, g), mk("g.s", specs[1].Shape, y)})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("finite addends were flagged")
	}
	got, _ := sum[0].Download()
	for i, v := range got.Float32() {
		if want := a[i] + g[i]; v != want { // float32 addition, as Go rounds it
			t.Fatalf("sum[%d] = %v, want %v", i, v, want)
		}
	}
	got, _ = sum[1].Download()
	for i, v := range got.Float32() {
		if want := x[i] + y[i]; v != want {
			t.Fatalf("sum.s[%d] = %v, want %v", i, v, want)
		}
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		ok, err := acc.Add(sum, []*runtime.DeviceTensor{mk("a.w", specs[0].Shape, a), mk("a.s", specs[1].Shape, x)},
			[]*runtime.DeviceTensor{mk("g.w", specs[0].Shape, g), mk("g.s", specs[1].Shape, []float32{0, 0, bad, 0})})
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Fatalf("a gradient holding %v was reported finite", bad)
		}
	}
	if _, err := acc.Add(sum, sum, sum); err == nil || !strings.Contains(err.Error(), "aliases") {
		t.Fatalf("aliased sum: err = %v", err)
	}
}

// TestProfileNamesEachNodesProvider enables ONNX Runtime's profiler on a
// bound session and on a host session: the JSON traces must list the
// graph's nodes with the provider each ran on.
func TestProfileNamesEachNodesProvider(t *testing.T) {
	orttest.Init(t)
	dir := t.TempDir()
	opts := &runtime.Options{IntraOpThreads: 1, Diagnostics: runtime.Diagnostics{Profile: dir + "/bound", Strict: true, LogLevel: "warning"}}
	dev, err := runtime.OpenDevice(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	s, err := runtime.NewBoundSession(scatterDir+"/model.onnx", dev, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	b, _ := os.ReadFile(scatterDir + "/golden_io.npz")
	golden, _ := npz.Read(b)
	in := map[string]runtime.Value{}
	hin := map[string]*runtime.Tensor{}
	for _, io := range s.Inputs() {
		x := tensorOf(t, golden["prefill_in."+io.Name])
		in[io.Name], hin[io.Name] = x, x
	}
	if _, err := s.Run(in, nil, "logits"); err != nil {
		t.Fatal(err)
	}
	path, err := s.EndProfiling()
	if err != nil {
		t.Fatal(err)
	}
	checkProfile(t, path)

	hopts := &runtime.Options{IntraOpThreads: 1, Diagnostics: runtime.Diagnostics{Profile: dir + "/host"}}
	h, err := runtime.NewSession(scatterDir+"/model.onnx", hopts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(hin, "logits"); err != nil {
		t.Fatal(err)
	}
	h.Destroy() // ONNX Runtime writes the host session's profile when it ends
	files, _ := filepath.Glob(dir + "/host*.json")
	if len(files) != 1 {
		t.Fatalf("host session profiles %v, want one", files)
	}
	checkProfile(t, files[0])
}

func checkProfile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []struct {
		Cat  string         `json:"cat"`
		Name string         `json:"name"`
		Args map[string]any `json:"args"`
	}
	if err := json.Unmarshal(b, &events); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	nodes := map[string]bool{}
	for _, e := range events {
		if e.Cat == "Node" && e.Args["provider"] == "CPUExecutionProvider" {
			nodes[e.Args["op_name"].(string)] = true
		}
	}
	if !nodes["MatMul"] || !nodes["Attention"] {
		t.Fatalf("%s: node events by op %v, want MatMul and Attention on the CPU provider", path, nodes)
	}
}

// TestRunDeviceGrowsKVOnDevice decodes with a growing (Hugging Face style)
// KV cache whose presents ONNX Runtime allocates on the device and the next
// step reads in place: logits and caches bit-identical to the host session,
// no cache byte crossing between Go and ONNX Runtime.
func TestRunDeviceGrowsKVOnDevice(t *testing.T) {
	orttest.Init(t)
	opts := &runtime.Options{IntraOpThreads: 1}
	host, err := runtime.NewSession(llamaModel, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Destroy()
	dev, err := runtime.OpenDevice(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	bound, err := runtime.NewBoundSession(llamaModel, dev, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer bound.Destroy()
	const B = 2
	steps := [][]int64{{5, 17, 301, 42, 9, 77}, {1000, 3}, {12, 31999}} // B rows per step, flattened
	var presents []string
	for _, o := range bound.Outputs() {
		if strings.HasPrefix(o.Name, "present.") {
			presents = append(presents, o.Name)
		}
	}
	hostPast := map[string]*runtime.Tensor{}
	devPast := map[string]*runtime.DeviceTensor{}
	for _, io := range bound.Inputs() {
		if strings.HasPrefix(io.Name, "past_key_values.") {
			hostPast[io.Name] = runtime.NewTensor(io.DType, B, io.Dims[1], 0, io.Dims[3])
			d, err := dev.NewTensor(io.Name, io.DType, B, io.Dims[1], 0, io.Dims[3])
			if err != nil {
				t.Fatal(err)
			}
			devPast[io.Name] = d
		}
	}
	defer func() {
		for _, d := range devPast {
			d.Destroy()
		}
	}()
	// feeds returns step's ids, positions and mask (every row the same length).
	feeds := func(step int) map[string]*runtime.Tensor {
		total := 0
		for _, toks := range steps[:step] {
			total += len(toks) / B
		}
		S := len(steps[step]) / B
		ids, _ := runtime.FromInt64([]int64{B, int64(S)}, steps[step])
		pos := make([]int64, B*S)
		for i := range pos {
			pos[i] = int64(total + i%S)
		}
		posT, _ := runtime.FromInt64([]int64{B, int64(S)}, pos)
		mask := make([]int64, B*(total+S))
		for i := range mask {
			mask[i] = 1
		}
		maskT, _ := runtime.FromInt64([]int64{B, int64(total + S)}, mask)
		return map[string]*runtime.Tensor{"input_ids": ids, "position_ids": posT, "attention_mask": maskT}
	}
	var hostLogits [][]byte
	for step := range steps {
		hin := feeds(step)
		for n, p := range hostPast {
			hin[n] = p
		}
		hout, err := host.Run(hin)
		if err != nil {
			t.Fatal(err)
		}
		hostLogits = append(hostLogits, hout["logits"].Bytes())
		for _, p := range presents {
			hostPast["past_key_values."+strings.TrimPrefix(p, "present.")] = hout[p]
		}
	}
	runtime.ResetTransferStats()
	total := 0
	for step := range steps {
		din := map[string]runtime.Value{}
		for n, v := range feeds(step) {
			din[n] = v
		}
		total += len(steps[step]) / B
		for n, d := range devPast {
			din[n] = d
		}
		dout, lout, err := bound.RunDevice(din, nil, presents, "logits")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(lout["logits"].Bytes(), hostLogits[step]) {
			t.Fatalf("step %d: device-cache logits differ from the host session's", step)
		}
		for _, p := range presents {
			past := "past_key_values." + strings.TrimPrefix(p, "present.")
			devPast[past].Destroy()
			devPast[past] = dout[p]
			if got := dout[p].Shape(); got[2] != int64(total) {
				t.Fatalf("step %d: %s has %d positions, want %d", step, p, got[2], total)
			}
		}
	}
	st := runtime.TransferStats()
	for name, n := range st.ByName {
		if strings.Contains(name, "key") || strings.Contains(name, "value") {
			t.Errorf("%d bytes of %s crossed between Go and ONNX Runtime", n, name)
		}
	}
	for name, d := range devPast {
		got, err := d.Download()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Bytes(), hostPast[name].Bytes()) {
			t.Errorf("device cache %s differs from the host path's", name)
		}
	}
}

// TestOpenDeviceUnknown: an unknown device is refused with the names that
// are known, and the failed open leaves nothing behind that a later open
// depends on (it releases the host memory info it made first).
func TestOpenDeviceUnknown(t *testing.T) {
	orttest.Init(t)
	if _, err := runtime.OpenDevice(&runtime.Options{Device: "tpu"}); err == nil || !strings.Contains(err.Error(), `unknown device "tpu" (want cpu or cuda)`) {
		t.Fatalf("err = %v, want the unknown device named", err)
	}
	dev, err := runtime.OpenDevice(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	x, err := dev.NewTensor("x", runtime.Float32, 2)
	if err != nil {
		t.Fatal(err)
	}
	x.Destroy()
}
