package grpo

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/eval"
	"gopkg.in/yaml.v3"
)

// FuzzConfig: any bytes as a training config give a config or an error,
// never a panic; an accepted config validates, its derived sizes are
// positive (no overflow), and it survives a YAML round trip unchanged.
func FuzzConfig(f *testing.F) {
	f.Add([]byte("steps: 3\ngroup: 2\nlr: 1e-6\n"))
	f.Add([]byte("\xef\xbb\xbfprompts: 4\ngroup: 5\nmini_batch: 10\ntemperature: 1\n"))
	f.Add([]byte("prompts: 9223372036854775807\ngroup: 2\n"))
	f.Add([]byte("clip_low: .nan\n"))
	f.Add([]byte("steps: [1]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		if cfg.RolloutsPerStep() <= 0 || cfg.MiniBatchSize() <= 0 {
			t.Fatalf("accepted config gives %d rollouts per step, mini-batch %d", cfg.RolloutsPerStep(), cfg.MiniBatchSize())
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := LoadConfig(path)
		if err != nil {
			t.Fatalf("the config written back does not load: %v\n%s", err, out)
		}
		if a, b := mustYAML(t, again), string(out); a != b {
			t.Fatalf("round trip changed the config:\n%s\nvs\n%s", b, a)
		}
	})
}

func mustYAML(t *testing.T, v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzState: any bytes as a checkpoint's state.json give a state or an
// error, never a panic; an accepted state has no negative counter, matches
// its directory's step, and survives a JSON round trip.
func FuzzState(f *testing.F) {
	f.Add([]byte(`{"step": 3, "update": 6, "epoch": 0, "cursor": 4, "seed": 1, "nonfinite_run": 0, "skipped": 0}`))
	f.Add([]byte(`{"step": 3, "update": -1, "epoch": 0, "cursor": 4, "seed": 1, "nonfinite_run": 0, "skipped": 0}`))
	f.Add([]byte(`{"step": 3, "update": 6, "epoch": 0, "cursor": 4, "seed": 1, "nonfinite_run": 0, "skipped": 0, "x": 1}`))
	f.Add([]byte(`{"step": 1e400}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := &Trainer{cfg: DefaultConfig(), opts: Options{Data: make([]eval.Example, 10)}}
		tr.cfg.Seed = 1
		dir := filepath.Join(t.TempDir(), CheckpointName(3))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := tr.readState(dir, "", "")
		if err != nil {
			return
		}
		if st.Step != 3 || st.Update < 0 || st.Epoch < 0 || st.Cursor < 0 || st.Cursor > 10 || st.NonFiniteRun < 0 || st.NonFiniteRun > st.Skipped {
			t.Fatalf("accepted an impossible state %+v", st)
		}
		again, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, StateFile), again, 0o644); err != nil {
			t.Fatal(err)
		}
		if back, err := tr.readState(dir, "", ""); err != nil || back != st {
			t.Fatalf("round trip: %+v %v", back, err)
		}
	})
}
