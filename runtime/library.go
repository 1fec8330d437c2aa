package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the ONNX Runtime release the project fetches and tests with.
const ORTVersion = "1.30.0"

// LibraryEnv names the environment variable that points at libonnxruntime.
const LibraryEnv = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// ErrNoLibrary is returned when no ONNX Runtime shared library can be found.
var ErrNoLibrary = errors.New("runtime: ONNX Runtime shared library not found")

var (
	initOnce sync.Once
	initErr  error
	initLib  string
)

// FindLibrary returns the path of the ONNX Runtime shared library.
func FindLibrary() (string, error) { return findLibrary(false) }

// findLibrary looks for the library where runtime/doc.go says: the
// environment variable, else the project cache that `make ort` fills; with
// gpu it first looks for the CUDA build that `make ort-gpu` installs in
// .cache/ort-gpu/<version>/.
func findLibrary(gpu bool) (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v (unset it, or run `make ort` in the dartc checkout to fetch onnxruntime-node@%s into .cache/ort)",
				ErrNoLibrary, LibraryEnv, p, err, ORTVersion)
		}
		return p, nil
	}
	if gpu {
		if p, ok := findCached(filepath.Join(".cache", "ort-gpu", ORTVersion, "libonnxruntime.so.1")); ok {
			return p, nil
		}
	}
	if p, ok := findCached(filepath.Join(".cache", "ort", ORTVersion, "libonnxruntime.so.1")); ok {
		return p, nil
	}
	return "", fmt.Errorf("%w: run `make ort` in the dartc checkout to fetch onnxruntime-node@%s into .cache/ort, or set %s to the library's path",
		ErrNoLibrary, ORTVersion, LibraryEnv)
}

// findCached looks for rel under the working directory and the
// executable's directory and their parents, up to the first folder that
// holds a go.mod (the checkout's root): a checkout nested in another, or
// beside a stray .cache higher up, does not load a library from outside
// itself.
func findCached(rel string) (string, bool) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if p := filepath.Join(d, rel); fileExists(p) {
				return p, true
			}
			if filepath.Dir(d) == d || fileExists(filepath.Join(d, "go.mod")) {
				break
			}
		}
	}
	return "", false
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Init loads the ONNX Runtime library and creates the process-wide
// environment. It returns the library path it loaded.
func Init() (string, error) { return initLibrary(false) }

// InitFor is Init for a device: for "cuda" it loads the CUDA build of
// .cache/ort-gpu when present (and ONNXRUNTIME_SHARED_LIBRARY_PATH is
// unset). The first Init or InitFor of the process decides the library.
func InitFor(device string) (string, error) { return initLibrary(device == DeviceCUDA) }

func initLibrary(gpu bool) (string, error) {
	initOnce.Do(func() {
		lib, err := findLibrary(gpu)
		if err != nil {
			initErr = err
			return
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			initErr = fmt.Errorf("runtime: initialize ONNX Runtime from %s: %w", lib, err)
			return
		}
		initLib = lib
	})
	return initLib, initErr
}

// Version reports the loaded ONNX Runtime version; Init must have succeeded.
func Version() string { return ort.GetVersion() }
