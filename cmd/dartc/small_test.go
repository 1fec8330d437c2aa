package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dartc/dartc/grpo"
	"github.com/urfave/cli/v2"
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

// TestTrainWarnings: group 1 and temperature 0 are accepted but warned
// about (each makes every GRPO advantage 0); the defaults warn nothing.
func TestTrainWarnings(t *testing.T) {
	cfg := grpo.DefaultConfig()
	if ws := trainWarnings(cfg); len(ws) != 0 {
		t.Fatalf("defaults warn: %v", ws)
	}
	cfg.Group, cfg.Temperature = 1, 0
	ws := trainWarnings(cfg)
	if len(ws) != 2 || !strings.Contains(ws[0], "group 1") || !strings.Contains(ws[1], "temperature 0") {
		t.Fatalf("warnings %q", ws)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("group: 1\ntemperature: 0\n"), 0o644)
	msg, _ := dartcProcess(t, "train", "--config", path, "--model", filepath.Join(t.TempDir(), "none"), "--data", "x", "--search", "y", "-o", filepath.Join(t.TempDir(), "run"))
	if !strings.Contains(msg, "group 1") || !strings.Contains(msg, "temperature 0") {
		t.Fatalf("dartc train with group: 1, temperature: 0 did not warn:\n%s", msg)
	}
}

// TestHelpPlaceholders: a back-quoted word in a flag's usage becomes the
// flag's placeholder in help (`--model dartc compile`): it must be a
// placeholder (DIR, FILE); and leas and gradangle describe their own -o.
func TestHelpPlaceholders(t *testing.T) {
	placeholder := regexp.MustCompile("^[A-Z][A-Z0-9_]*$")
	var walk func(prefix string, cmds []*cli.Command)
	outputs := map[string]string{}
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name)
			for _, f := range c.Flags {
				df, ok := f.(cli.DocGenerationFlag)
				if !ok {
					continue
				}
				usage := df.GetUsage()
				for _, m := range regexp.MustCompile("`([^`]*)`").FindAllStringSubmatch(usage, -1) {
					if !placeholder.MatchString(m[1]) {
						t.Errorf("dartc %s --%s: help shows %q as the value placeholder: %q", name, f.Names()[0], m[1], usage)
					}
				}
				if f.Names()[0] == "output" {
					outputs[name] = usage
				}
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", newApp().Commands)
	for cmd, want := range map[string]string{"leas": "lambda23.png", "gradangle": "angles.png", "eval": "predictions.jsonl"} {
		if !strings.Contains(outputs[cmd], want) {
			t.Errorf("dartc %s -o: %q does not say it writes %s", cmd, outputs[cmd], want)
		}
	}
}

// TestNoProgressBarOffTerminal: with stderr captured (not a terminal),
// search index writes no progress bar, only its result line.
func TestNoProgressBarOffTerminal(t *testing.T) {
	msg, code := dartcProcess(t, "search", "index", "--corpus", "../../retrieval/testdata/small.jsonl", "-o", filepath.Join(t.TempDir(), "i.bm25"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if strings.Contains(msg, "indexing") || strings.Contains(msg, "%|") {
		t.Fatalf("a progress bar on a non-terminal stderr:\n%q", msg)
	}
}

// TestConfigBOM: a training config saved with a UTF-8 byte order mark
// reads as without it.
func TestConfigBOM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("\xef\xbb\xbfsteps: 7\ngroup: 3\n"), 0o644)
	cfg, err := grpo.LoadConfig(path)
	if err != nil || cfg.Steps != 7 || cfg.Group != 3 {
		t.Fatalf("config with a BOM: steps %d group %d, %v", cfg.Steps, cfg.Group, err)
	}
}

// TestNoGoTypeNamesInErrors: a value of the wrong kind in an input file is
// reported by its field and JSON's words, not by Go struct and type names.
func TestNoGoTypeNamesInErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"eval", "score", file("p.jsonl", `{"pred": 3, "golden_answers": ["x"]}`+"\n")}, `field "pred" is a number, want a string`},
		{[]string{"search", "index", "--corpus", file("c.jsonl", `{"id": "a", "contents": 3}`+"\n"), "-o", filepath.Join(dir, "i.bm25")}, `field "contents" is a number, want a string`},
		{[]string{"train", "--config", file("c.yaml", "steps: abc\n"), "--model", dir, "--data", "x", "--search", "y", "-o", filepath.Join(dir, "run")}, "line 1: `abc` is text, want a whole number"},
		{[]string{"run", filepath.Dir(file("m/manifest.json", `{"format": 3}`)), "--steps", "1"}, `field "format" is a number, want a string`},
	}
	for _, c := range cases {
		msg, code := dartcProcess(t, c.args...)
		if code == 0 || !strings.Contains(msg, c.says) {
			t.Errorf("dartc %v: exit %d: %q, want it to say %q", c.args, code, msg, c.says)
		}
		for _, goish := range []string{"Go struct", "Go value", "of type", "unmarshal"} {
			if strings.Contains(msg, goish) {
				t.Errorf("dartc %v: %q says %q", c.args, msg, goish)
			}
		}
	}
}

// TestGradcheckFloat32Note: gradcheck on a float32 model says the check is
// coarse there and that float64 is the precise one; on float64 it does not.
func TestGradcheckFloat32Note(t *testing.T) {
	dir := t.TempDir()
	for _, dtype := range []string{"float32", "float64"} {
		src, out := filepath.Join(dir, "src-"+dtype), filepath.Join(dir, "out-"+dtype)
		for _, args := range [][]string{
			{"models", "synth", "--preset", "tiny", "--layers", "1", "--dtype", dtype, "-o", src},
			{"compile", filepath.Join(src, "model.onnx"), "-o", out, "--rank", "2"},
		} {
			if msg, err := runDartc(t, "", args...); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, msg)
			}
		}
		msg, err := runDartc(t, "", "gradcheck", out, "--samples", "1", "--top", "1")
		if err != nil && dtype == "float64" {
			t.Fatalf("gradcheck %s: %v\n%s", dtype, err, msg)
		}
		if err != nil { // float32 may exceed its coarse tolerance; the error must say why
			if !strings.Contains(err.Error(), "the precise check is on a float64 copy") {
				t.Errorf("gradcheck float32 error %q does not point to float64", err)
			}
		}
		if noted := strings.Contains(msg, "the precise check is on a float64 copy"); noted != (dtype == "float32") {
			t.Errorf("gradcheck on %s: note %v:\n%s", dtype, noted, msg)
		}
	}
}
