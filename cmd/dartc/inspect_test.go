package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestInspectRefusesBadTargets: an unknown or empty --targets is the
// user's error, refused with exit status 1 (it used to be printed inside
// the report, exit 0); a model where no target matches still reports it
// in target_error, exit 0.
func TestInspectRefusesBadTargets(t *testing.T) {
	model := filepath.Join(fixtures, "ortgenai-tiny-random-llama-fp16/model.onnx")
	for _, c := range []struct {
		targets, says string
	}{
		{"foo,q", `unknown target "foo"; choose from q,k,v,o,gate,up,down`},
		{"qkv", `unknown target "qkv"`},
		{"", `--targets "" names no projection`},
		{" , ", `--targets " , " names no projection`},
	} {
		msg, code := dartcProcess(t, "inspect", model, "--targets", c.targets)
		if code != 1 || !strings.Contains(msg, c.says) {
			t.Errorf("inspect --targets %q: exit %d, stderr %q; want 1 and %q", c.targets, code, msg, c.says)
		}
	}
	out, err := runDartc(t, "", "inspect", model, "--targets", "q, down", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 4 || rep.TargetError != "" {
		t.Errorf("--targets q,down: %d targets, error %q; want 2 per layer × 2, none", len(rep.Targets), rep.TargetError)
	}
	out, err = runDartc(t, "", "inspect", filepath.Join(fixtures, "optimum-tiny-distilbert/model.onnx"), "--json")
	if err != nil {
		t.Fatalf("a model without Qwen2 projections: %v", err)
	}
	rep = inspectReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.TargetError, "no linear layer matched") {
		t.Errorf("distilbert target_error %q, want the no-match finding", rep.TargetError)
	}
}
