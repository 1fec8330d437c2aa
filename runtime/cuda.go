package runtime

import (
	"debug/elf"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dartc/dartc/runtime/internal/ortc"
)

// CUDAProviderLib is the file name of ONNX Runtime's CUDA provider.
const CUDAProviderLib = "libonnxruntime_providers_cuda.so"

// CUDAMissing is one thing the CUDA provider needs and this machine lacks.
type CUDAMissing struct {
	Library string // the file the loader did not find ("libcudart.so.13")
	What    string // what it belongs to ("CUDA 13 runtime")
	Fix     string // how to get it
}

// CUDAReport says whether ONNX Runtime's CUDA provider can run here, and
// if not, why.
type CUDAReport struct {
	// Loaded is the ONNX Runtime library of this process.
	Loaded string
	// Provider is the CUDA provider library found ("" when none): next to
	// the loaded library, else in .cache/ort-gpu/<version>/.
	Provider string
	// NextToLoaded reports that Provider sits next to the loaded library,
	// so that the loaded library can use it.
	NextToLoaded bool
	// Missing lists the libraries the provider needs that the loader
	// cannot load.
	Missing []CUDAMissing
	// Tried reports that a CUDA session was attempted; Err is its failure
	// (nil: the provider works).
	Tried bool
	Err   error
}

// Usable reports whether a CUDA session was created.
func (r CUDAReport) Usable() bool { return r.Tried && r.Err == nil }

// Status is one line: "usable", or "absent"/"present, unusable" with the
// reason.
func (r CUDAReport) Status() string {
	switch {
	case r.Usable():
		return "usable (" + r.Provider + ")"
	case r.Provider == "":
		return "absent: no " + CUDAProviderLib + " next to " + r.Loaded + " or in .cache/ort-gpu/" + ORTVersion +
			" (run `make ort-gpu` for ONNX Runtime " + ORTVersion + "'s CUDA 13 build)"
	}
	reason := strings.Join(r.groups(func(what string, libs []string) string {
		return what + " (" + strings.Join(libs, ", ") + ")"
	}), "; ")
	if reason != "" {
		reason = "missing " + reason
	}
	if r.Tried && r.Err != nil {
		if reason != "" {
			reason += "; "
		}
		reason += "creating a CUDA session failed: " + firstLine(r.Err.Error())
	}
	if reason == "" && !r.NextToLoaded {
		reason = "its libraries are found, but this process loaded " + r.Loaded +
			"; run with --device cuda (or " + LibraryEnv + "=" + filepath.Join(filepath.Dir(r.Provider), "libonnxruntime.so.1") + ") to try it"
	}
	return "present (" + r.Provider + "), unusable: " + reason
}

// Explain is Status with the fix for each missing part, for error messages.
func (r CUDAReport) Explain() string {
	var b strings.Builder
	b.WriteString("CUDA provider: " + r.Status())
	for _, line := range r.Fixes() {
		b.WriteString("\n  " + line)
	}
	if r.Provider != "" && !r.NextToLoaded {
		fmt.Fprintf(&b, "\n  the loaded library %s has no CUDA provider next to it: set %s=%s",
			r.Loaded, LibraryEnv, filepath.Join(filepath.Dir(r.Provider), "libonnxruntime.so.1"))
	}
	b.WriteString("\n  or run on the CPU with --device cpu")
	return b.String()
}

// Fixes returns one line per missing part: what it is, its libraries and
// how to get it.
func (r CUDAReport) Fixes() []string {
	return r.groups(func(what string, libs []string) string {
		fix := ""
		for _, m := range r.Missing {
			if m.What == what {
				fix = m.Fix
			}
		}
		return "missing " + what + " (" + strings.Join(libs, ", ") + "): " + fix
	})
}

// groups formats the missing libraries grouped by what they belong to,
// in order of first appearance.
func (r CUDAReport) groups(format func(what string, libs []string) string) []string {
	var order []string
	libs := map[string][]string{}
	for _, m := range r.Missing {
		if libs[m.What] == nil {
			order = append(order, m.What)
		}
		libs[m.What] = append(libs[m.What], m.Library)
	}
	out := make([]string, len(order))
	for i, w := range order {
		out[i] = format(w, libs[w])
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

const cudaLibFix = "install CUDA 13's runtime libraries (a CUDA 13 toolkit, or `pip install nvidia-cuda-runtime==13.* " +
	"nvidia-cublas==13.* nvidia-curand`) and put their lib directories on LD_LIBRARY_PATH"

// cudaNeeds names what each library the CUDA provider loads belongs to.
func cudaNeeds(lib string) (what, fix string) {
	switch {
	case lib == "libcuda.so.1":
		return "the NVIDIA driver, so no usable GPU", "run on a host with an NVIDIA GPU and driver R580 or newer (CUDA 13)"
	case strings.HasPrefix(lib, "libcudnn"):
		return "cuDNN 9 for CUDA 13", "`pip install nvidia-cudnn-cu13` (or cuDNN 9 for CUDA 13 from NVIDIA) and put its lib directory on LD_LIBRARY_PATH"
	case strings.HasPrefix(lib, "libcudart"), strings.HasPrefix(lib, "libcublas"), strings.HasPrefix(lib, "libcurand"):
		return "the CUDA 13 libraries", cudaLibFix
	case strings.HasPrefix(lib, "libonnxruntime_providers_shared"):
		return "ONNX Runtime's provider bridge", "run `make ort-gpu`, which installs it next to the CUDA provider"
	}
	return "a dependency of the CUDA provider", "install it where the dynamic loader finds it"
}

// CheckCUDA looks for ONNX Runtime's CUDA provider and what it needs: the
// provider library, its bridge, the CUDA 13 libraries it links, cuDNN 9
// (which it loads at run time) and the driver. With try, and when the
// loaded library can reach the provider, it also creates a CUDA session on
// a tiny in-memory graph, which is the final word.
func CheckCUDA(try bool) CUDAReport {
	var r CUDAReport
	r.Loaded, _ = Init()
	if r.Loaded == "" {
		r.Loaded, _ = FindLibrary()
	}
	next := filepath.Join(filepath.Dir(r.Loaded), CUDAProviderLib)
	if r.Loaded != "" && fileExists(next) {
		r.Provider, r.NextToLoaded = next, true
	} else if p, ok := findCached(filepath.Join(".cache", "ort-gpu", ORTVersion, CUDAProviderLib)); ok {
		r.Provider, _ = filepath.Abs(p)
	}
	if r.Provider == "" {
		return r
	}
	needed := []string{filepath.Join(filepath.Dir(r.Provider), "libonnxruntime_providers_shared.so")}
	if f, err := elf.Open(r.Provider); err == nil {
		libs, _ := f.ImportedLibraries()
		f.Close()
		for _, l := range libs {
			if strings.HasPrefix(l, "libcu") {
				needed = append(needed, l)
			}
		}
	}
	needed = append(needed, "libcudnn.so.9")
	if err := initDevice(); err == nil {
		for _, l := range needed {
			if perr := ortc.Probe(l); perr != nil {
				what, fix := cudaNeeds(filepath.Base(l))
				r.Missing = append(r.Missing, CUDAMissing{Library: filepath.Base(l), What: what, Fix: fix})
			}
		}
	}
	if try && r.NextToLoaded && !slices.ContainsFunc(r.Missing, func(m CUDAMissing) bool { return m.Library == "libcuda.so.1" }) {
		r.Tried = true
		r.Err = tryCUDA()
	}
	return r
}

// tryCUDA opens a CUDA session, with strict placement, on a small graph.
func tryCUDA() error {
	dev, err := OpenDevice(&Options{Device: DeviceCUDA})
	if err != nil {
		return err
	}
	defer dev.Close()
	model, ins, outs, err := accumulateGraph([]TensorSpec{{Name: "x", DType: Float32, Shape: []int64{1}}})
	if err != nil {
		return err
	}
	s, err := newBoundSessionFromBytes("cuda-probe", model, dev, &Options{Device: DeviceCUDA, Diagnostics: Diagnostics{Strict: true}}, ins, outs)
	if err != nil {
		return err
	}
	return s.Destroy()
}
