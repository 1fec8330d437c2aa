package runtime

import (
	"errors"
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
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Chdir(t.TempDir())
	_, err = FindLibrary()
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "make ort") {
		t.Fatalf("nothing found: %v, want the `make ort` hint", err)
	}
}
