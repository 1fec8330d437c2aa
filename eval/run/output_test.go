package run_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/eval/run"
	"github.com/dartc/dartc/eval/run/runtest"
)

func testSettings() map[string]string {
	return map[string]string{"model": strings.Repeat("a", 64), "adapters": strings.Repeat("b", 64), "search": "/data/wiki.bm25"}
}

// sameFiles fails unless every file under dir is exactly files.
func sameFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if got := runtest.Files(t, dir); !maps.Equal(got, files) {
		t.Errorf("%s now holds %q, want it untouched: %q", dir, got, files)
	}
}

// TestRunWritesOnlyIntoItsOwnDir: eval writes its report only into a new
// or empty directory or one it wrote (its settings.json says eval, or is
// an eval report's from before the command was recorded). A folder of the
// user's with a hand-written table and settings.json, a half-finished
// leas report, a folder without settings.json and a file are refused,
// and left exactly as they were.
func TestRunWritesOnlyIntoItsOwnDir(t *testing.T) {
	ctx := context.Background()
	opts := func(dir string) run.Options {
		return run.Options{Datasets: datasets, Dir: dir, Limit: 2, Batch: 2, Settings: testSettings()}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"hand-written paper", map[string]string{"table.md": "| my | table |\n", "table.csv": "my,table\n", "settings.json": `{"font": "serif"}` + "\n"},
			"its settings.json does not say that dartc eval wrote it"},
		{"half-finished leas", map[string]string{"settings.json": `{"command": "leas", "k": "8"}` + "\n", "rollouts.jsonl": ""},
			"its settings.json says dartc leas wrote it, not dartc eval"},
		{"notes", map[string]string{"predictions.jsonl": "", "notes.md": "to do\n"},
			"it has no settings.json, so dartc eval did not write it"},
		{"bad settings.json", map[string]string{"settings.json": `{"command": "eval", "topk": 3}`},
			`its settings.json is not one dartc writes`},
	} {
		dir := t.TempDir()
		runtest.WriteFiles(t, dir, tc.files)
		_, err := run.Run(ctx, &oracle{}, opts(dir))
		if err == nil || !strings.Contains(err.Error(), "refusing to write into "+dir) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want a refusal saying %q", tc.name, err, tc.want)
		}
		sameFiles(t, dir, tc.files)
	}
	file := filepath.Join(t.TempDir(), "report")
	runtest.WriteFiles(t, filepath.Dir(file), map[string]string{"report": "mine\n"})
	if _, err := run.Run(ctx, &oracle{}, opts(file)); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as the report: %v", err)
	}

	// An empty directory is written, and then resumed as eval's own.
	dir := t.TempDir()
	if _, err := run.Run(ctx, &oracle{}, opts(dir)); err != nil {
		t.Fatalf("empty directory: %v", err)
	}
	var s map[string]string
	b, err := os.ReadFile(filepath.Join(dir, run.SettingsFile))
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil || s["command"] != "eval" {
		t.Fatalf("settings.json records command %q (%v), want eval", s["command"], err)
	}
	if res, err := run.Run(ctx, &oracle{}, opts(dir)); err != nil || res.Resumed != 4 {
		t.Fatalf("rerun on its own report: %v", err)
	}
	// A report written before the command was recorded still resumes.
	delete(s, "command")
	b, _ = json.Marshal(s)
	runtest.WriteFiles(t, dir, map[string]string{run.SettingsFile: string(b)})
	if res, err := run.Run(ctx, &oracle{}, opts(dir)); err != nil || res.Resumed != 4 {
		t.Fatalf("rerun on a report from before the command was recorded: %v", err)
	}
}

// TestResumeChecksIndexDigest: the index's sha256 is part of the settings:
// rows made with one index are not resumed with another at the same path,
// and the refusal names both digests. A report from before the digest was
// recorded resumes with a warning, its rows keeping their id.
func TestResumeChecksIndexDigest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := testSettings()
	opts := run.Options{Datasets: datasets, Dir: dir, Limit: 3, Batch: 2, Settings: old}
	if _, err := run.Run(ctx, &oracle{failAt: 2}, opts); err == nil {
		t.Fatal("the first run did not stop")
	}
	// An older dartc wrote neither the digest nor the command.
	b, _ := json.Marshal(old)
	runtest.WriteFiles(t, dir, map[string]string{run.SettingsFile: string(b)})

	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	withDigest := maps.Clone(old)
	withDigest["search_sha256"] = strings.Repeat("d", 64)
	opts.Settings = withDigest
	if _, err := run.Run(ctx, &oracle{}, opts); err != nil {
		t.Fatalf("resuming a report from before the digest: %v", err)
	}
	if !strings.Contains(logs.String(), "predates the record of the search index's sha256") || !strings.Contains(logs.String(), "/data/wiki.bm25") {
		t.Errorf("no warning that the index cannot be checked: %q", logs.String())
	}
	recs, _, err := run.ReadRecords(filepath.Join(dir, run.PredictionsFile))
	if err != nil || len(recs) != 6 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Run != run.SettingsID(old) {
			t.Fatalf("row %s has run %q, want the old report's %q", r.ID, r.Run, run.SettingsID(old))
		}
	}

	// A new report records the digest; a rebuilt index is refused.
	dir = t.TempDir()
	opts = run.Options{Datasets: datasets, Dir: dir, Limit: 3, Batch: 2, Settings: withDigest}
	if _, err := run.Run(ctx, &oracle{failAt: 2}, opts); err == nil {
		t.Fatal("the first run did not stop")
	}
	rebuilt := maps.Clone(withDigest)
	rebuilt["search_sha256"] = strings.Repeat("e", 64)
	opts.Settings = rebuilt
	_, err = run.Run(ctx, &oracle{}, opts)
	if err == nil || !strings.Contains(err.Error(), `search_sha256: "dddddddddddd…" → "eeeeeeeeeeee…"`) || !strings.Contains(err.Error(), "rebuilt") {
		t.Errorf("resuming with a rebuilt index: %v", err)
	}
}

// TestReportReadersNameTheField: a value of the wrong kind in a report's
// row or settings.json is named by its field, not in Go's terms.
func TestReportReadersNameTheField(t *testing.T) {
	dir := t.TempDir()
	runtest.WriteFiles(t, dir, map[string]string{run.PredictionsFile: `{"id": "a", "data_source": "nq", "em": "yes"}` + "\n"})
	_, _, err := run.ReadRecords(filepath.Join(dir, run.PredictionsFile))
	if err == nil || !strings.Contains(err.Error(), `predictions.jsonl:1: field "em" is a string, want a number`) || strings.Contains(err.Error(), "Go ") {
		t.Errorf("a string EM: %v", err)
	}
	// settings.json, as a resume reads it.
	report := t.TempDir()
	row := `{"id": "test_0", "data_source": "nq", "question": "q", "golden_answers": ["a"], "pred": "a", "run": "0123456789abcdef"}` + "\n"
	opts := run.Options{Datasets: datasets[:1], Dir: report, Limit: 1, Settings: testSettings()}
	for settings, want := range map[string]string{
		`{"command": "eval", "topk": 3}`: `settings.json: field "topk" is a number, want a string`,
		`["eval"]`:                       "settings.json: the value is a list, want an object",
	} {
		runtest.WriteFiles(t, report, map[string]string{run.PredictionsFile: row, run.SettingsFile: settings})
		if _, err := run.Run(context.Background(), &oracle{}, opts); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go ") {
			t.Errorf("settings.json %s: %v; want %q", settings, err, want)
		}
	}
}
