package bm25

import (
	"testing"

	"github.com/dartc/dartc/retrieval/internal/synth"
)

// sharedData returns the team's shared fixture folder, ../shared/data beside
// the repository root. Tests fail (never skip) when it is missing.
func sharedData(t testing.TB) string {
	t.Helper()
	dir, err := synth.SharedDataDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
