package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoLibraryHint: when the library is not found, the error says how to
// get it: `make ort` (plain `make` only builds dartc).
func TestNoLibraryHint(t *testing.T) {
	t.Setenv(LibraryEnv, filepath.Join(t.TempDir(), "missing.so"))
	_, err := FindLibrary()
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "make ort") {
		t.Fatalf("%s points nowhere: %v, want ErrNoLibrary with the `make ort` hint", LibraryEnv, err)
	}
	t.Setenv(LibraryEnv, "")
	t.Chdir(t.TempDir())
	_, err = FindLibrary()
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "make ort") {
		t.Fatalf("nothing found: %v, want the `make ort` hint", err)
	}
}

// TestUserCacheNotSearched: the library is looked up only where the docs
// say (runtime/doc.go, README's ONNX Runtime section): the environment
// variable, then .cache/ort/<version>/ of the project. Nothing installs it
// under the user's cache directory, so a stale copy there must not be
// loaded in preference to the project's.
func TestUserCacheNotSearched(t *testing.T) {
	cache := t.TempDir()
	stale := filepath.Join(cache, "dartc", "ort", ORTVersion, "libonnxruntime.so.1")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv(LibraryEnv, "")
	t.Chdir(t.TempDir())
	if p, err := FindLibrary(); !errors.Is(err, ErrNoLibrary) {
		t.Fatalf("FindLibrary = %q, %v; want ErrNoLibrary: only %s and .cache/ort/%s are searched", p, err, LibraryEnv, ORTVersion)
	}
}

// TestLibraryLookupStopsAtCheckoutRoot: a checkout nested inside a folder
// whose .cache holds a library does not load that library; the lookup stops
// at the first folder with a go.mod.
func TestLibraryLookupStopsAtCheckoutRoot(t *testing.T) {
	outer := t.TempDir()
	stray := filepath.Join(outer, ".cache", "ort", ORTVersion, "libonnxruntime.so.1")
	inner := filepath.Join(outer, "checkout")
	for _, f := range []string{stray, filepath.Join(inner, "go.mod")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(LibraryEnv, "")
	sub := filepath.Join(inner, "cmd")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	if p, err := FindLibrary(); !errors.Is(err, ErrNoLibrary) {
		t.Fatalf("FindLibrary = %q, %v; want ErrNoLibrary (the library above the checkout is not its own)", p, err)
	}
	// Without the go.mod the folder above is part of the same tree.
	if err := os.Remove(filepath.Join(inner, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if p, err := FindLibrary(); err != nil || p != stray {
		t.Fatalf("FindLibrary = %q, %v; want %s", p, err, stray)
	}
}
