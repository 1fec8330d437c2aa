package bm25

import (
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/retrieval/internal/synth"
)

// fixture returns the path of a repository fixture file (a synth constant).
// Tests fail (never skip) when it is missing.
func fixture(t testing.TB, rel string) string {
	t.Helper()
	root, err := synth.Root()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}
