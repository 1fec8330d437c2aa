package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlotMetricsErrorsInPlainWords: a metrics.jsonl row with a value of
// the wrong kind is reported by line and field, not in Go's terms, and a
// file starting with a UTF-8 byte order mark plots like one without.
func TestPlotMetricsErrorsInPlainWords(t *testing.T) {
	dir := t.TempDir()
	bad, bom := filepath.Join(dir, "bad"), filepath.Join(dir, "bom")
	os.MkdirAll(bad, 0o755)
	os.MkdirAll(bom, 0o755)
	os.WriteFile(filepath.Join(bad, "metrics.jsonl"), []byte("{\"step\":1,\"reward_mean\":0.5}\n{\"step\":2,\"reward_mean\":\"x\"}\n"), 0o644)
	os.WriteFile(filepath.Join(bom, "metrics.jsonl"), []byte("\xef\xbb\xbf{\"step\":1,\"reward_mean\":0.5}\n{\"step\":2,\"reward_mean\":0.6}\n"), 0o644)

	msg, code := dartcProcess(t, "plot", bad)
	if code != 1 || !strings.Contains(msg, `line 2: field "reward_mean" is a string, want a number`) || strings.Contains(msg, "Go struct") {
		t.Errorf("plot of a string reward: exit %d, stderr %q", code, msg)
	}
	if out, err := runDartc(t, "", "plot", bom); err != nil {
		t.Fatalf("plot of a metrics.jsonl with a BOM: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(bom, "plots", "reward.png")); err != nil {
		t.Errorf("plot of a metrics.jsonl with a BOM: %v", err)
	}
}
