package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestZeroRankAlphaRefused: --rank 0 and --alpha 0 are errors, not the
// defaults (16 and 32) taken silently.
func TestZeroRankAlphaRefused(t *testing.T) {
	src := filepath.Join(fixtures, "ortgenai-static-scatter-bias-decoder/model.onnx")
	for _, flag := range [][]string{{"--rank", "0"}, {"--alpha", "0"}, {"--rank", "-2"}, {"--alpha", "-1"}} {
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"compile", src, "-o", out, "--graphs", "decode"}, flag...)
		msg, code := dartcProcess(t, args...)
		if code == 0 || !strings.Contains(msg, flag[0]) {
			t.Errorf("dartc %v: exit %d: %s", args, code, msg)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("dartc %v wrote %s", args, out)
		}
	}
}
