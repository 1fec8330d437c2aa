package main

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/eval/leasrun"
	"github.com/dartc/dartc/eval/run/runtest"
)

// twoQuestions writes a two-question NQ file, so that a run that should
// have been refused ends soon.
func twoQuestions(t *testing.T, f runtest.Fixture) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.Data, "nq_test.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	p := filepath.Join(t.TempDir(), "nq_test.jsonl")
	if err := os.WriteFile(p, []byte(lines[0]+lines[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEvalLEASGradangleWriteOnlyTheirOwn: eval, leas and gradangle write
// only into a new or empty -o directory or one they wrote. The review's
// repro (gradangle -o proj, proj holding partial/chapter1.tex and a
// summary.json of the user's), eval -o a paper folder with a hand-written
// table and settings.json, leas -o a notes folder with summary.json and
// results.jsonl, and eval -o an interrupted leas report are refused with
// exit status 1, and every file is left as it was.
func TestEvalLEASGradangleWriteOnlyTheirOwn(t *testing.T) {
	f := runtest.Get(t)
	t.Cleanup(runtest.Cleanup)
	data := twoQuestions(t, f)
	root := t.TempDir()
	p := func(name string) string { return filepath.Join(root, name) }
	gradangle := func(out string) []string {
		return []string{"gradangle", "--model", f.Model, "--adapters", f.Adapters["unified"], "--data", data, "--search", f.Index,
			"--limit", "1", "--max-turns", "1", "--max-turn-tokens", "24", "--quiet", "-o", out}
	}
	eval := func(out string) []string {
		return []string{"eval", "--model", f.Model, "--adapters", f.Adapters["unified"], "--data", data, "--search", f.Index,
			"--limit", "1", "--max-turns", "1", "--max-turn-tokens", "4", "--quiet", "-o", out}
	}
	leas := func(out string) []string {
		return []string{"leas", "--model", f.Model, "--reason-adapters", f.Adapters["reason"], "--tool-adapters", f.Adapters["tool"],
			"--unified-adapters", f.Adapters["unified"], "--data", data, "--search", f.Index, "-k", "1", "--limit", "1",
			"--max-turns", "1", "--max-turn-tokens", "2", "--quiet", "-o", out}
	}

	// An interrupted leas report: its rollouts and settings, no report yet.
	if out, err := runDartc(t, "", leas(p("leas"))...); err != nil {
		t.Fatalf("leas: %v\n%s", err, out)
	}
	for _, name := range []string{leasrun.QuestionsFile, leasrun.ResultsFile, leasrun.SummaryFile, leasrun.HistogramFile} {
		os.Remove(p("leas/" + name))
	}
	halfLeas := runtest.Files(t, p("leas"))

	for _, tc := range []struct {
		name  string
		args  []string
		dir   string
		files map[string]string
		want  string
	}{
		{"gradangle -o proj", gradangle(p("proj")), p("proj"),
			runtest.WriteFiles(t, p("proj"), map[string]string{"partial/chapter1.tex": "draft\n", "summary.json": "mine\n"}), "no settings.json"},
		{"eval -o mypaper", eval(p("mypaper")), p("mypaper"),
			runtest.WriteFiles(t, p("mypaper"), map[string]string{"table.md": "| my | table |\n", "table.csv": "my,table\n", "settings.json": `{"title": "mine"}` + "\n"}),
			"does not say that dartc eval wrote it"},
		{"leas -o notes", leas(p("notes")), p("notes"),
			runtest.WriteFiles(t, p("notes"), map[string]string{"summary.json": `{"mine": true}` + "\n", "results.jsonl": "my results\n"}), "no settings.json"},
		{"eval -o an interrupted leas report", eval(p("leas")), p("leas"), halfLeas, "says dartc leas wrote it, not dartc eval"},
	} {
		msg, code := dartcProcess(t, tc.args...)
		if code != 1 || !strings.Contains(msg, "refusing to write into "+tc.dir) || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: exit %d, %q; want exit 1 and a refusal saying %q", tc.name, code, msg, tc.want)
		}
		if got := runtest.Files(t, tc.dir); !maps.Equal(got, tc.files) {
			t.Errorf("%s: the folder now holds %q, want it untouched: %q", tc.name, got, tc.files)
		}
	}
	// Their own directories still resume.
	if out, err := runDartc(t, "", leas(p("leas"))...); err != nil || !strings.Contains(out, "1 questions × 6 configurations") {
		t.Errorf("leas resuming its own report: %v\n%s", err, out)
	}
	for range 2 {
		if out, err := runDartc(t, "", eval(p("eval"))...); err != nil || !strings.Contains(out, "1 questions") {
			t.Errorf("eval into a new directory, then resuming it: %v\n%s", err, out)
		}
	}
}

// TestEvalLEASRefuseRebuiltIndex: a report records the sha256 of its
// --search index, so rebuilding the index at the same path with other
// passages (dartc search index --force) and resuming is refused, naming
// both digests, instead of mixing rows made with the two indexes.
func TestEvalLEASRefuseRebuiltIndex(t *testing.T) {
	f := runtest.Get(t)
	t.Cleanup(runtest.Cleanup)
	data := twoQuestions(t, f)
	dir := t.TempDir()
	idx := filepath.Join(dir, "wiki.bm25")
	digest := func() string {
		b, err := os.ReadFile(idx)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])[:12]
	}
	corpus := "../../retrieval/testdata/small.jsonl"
	if out, err := runDartc(t, "", "search", "index", "--corpus", corpus, "-o", idx); err != nil {
		t.Fatalf("search index: %v\n%s", err, out)
	}
	before := digest()
	eval := []string{"eval", "--model", f.Model, "--data", data, "--search", idx, "--limit", "2", "--batch", "1",
		"--max-turns", "1", "--max-turn-tokens", "4", "--quiet", "-o", filepath.Join(dir, "report")}
	leas := []string{"leas", "--model", f.Model, "--reason-adapters", f.Adapters["reason"], "--tool-adapters", f.Adapters["tool"],
		"--unified-adapters", f.Adapters["unified"], "--data", data, "--search", idx, "-k", "1", "--limit", "1",
		"--max-turns", "1", "--max-turn-tokens", "2", "--quiet", "-o", filepath.Join(dir, "leas")}
	for _, args := range [][]string{eval, leas} {
		if out, err := runDartc(t, "", args...); err != nil {
			t.Fatalf("dartc %s: %v\n%s", args[0], err, out)
		}
	}

	// The same path, other passages.
	b, err := os.ReadFile(corpus)
	if err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, "half.jsonl")
	os.WriteFile(half, []byte(strings.Join(strings.SplitAfter(string(b), "\n")[:6], "")), 0o644)
	if out, err := runDartc(t, "", "search", "index", "--corpus", half, "--force", "-o", idx); err != nil {
		t.Fatalf("search index --force: %v\n%s", err, out)
	}
	after := digest()
	for _, args := range [][]string{eval, leas} {
		_, err := runDartc(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), "search_sha256") || !strings.Contains(err.Error(), before) || !strings.Contains(err.Error(), after) {
			t.Errorf("dartc %s resuming with the rebuilt index: %v; want a refusal naming %s… and %s…", args[0], err, before, after)
		}
	}
}

// TestGradangleAdaptersFlag: gradangle needs --adapters (the angles are
// those of a given adapter), and its help says so instead of eval's
// "default: zeros, the base model".
func TestGradangleAdaptersFlag(t *testing.T) {
	out, err := runDartc(t, "", "gradangle", "--help")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "--adapters") {
			line = l
		}
	}
	if line == "" || strings.Contains(line, "default: zeros") || !strings.Contains(line, "required") || !strings.Contains(line, "reasoning slot") {
		t.Errorf("gradangle --help describes --adapters as %q", line)
	}
	if _, err := runDartc(t, "", "gradangle", "--model", "m", "--data", "d.jsonl", "-o", t.TempDir()); err == nil || !strings.Contains(err.Error(), "adapters") {
		t.Errorf("gradangle without --adapters: %v", err)
	}
}

// TestEvalLEASGradangleRefuseBadNumbers: counts below their least value
// and a smoothing alpha that is not finite and > 0 are refused before any
// work, naming the flag, instead of silently becoming a default (--docs 0
// ran with 3 passages, --max-turn-tokens 0 with 500, --limit -5 on every
// question, --batch -3 with 8) or failing after every rollout (--alpha -1,
// --docs -1). Nothing is written.
func TestEvalLEASGradangleRefuseBadNumbers(t *testing.T) {
	f := runtest.Get(t)
	t.Cleanup(runtest.Cleanup)
	data := twoQuestions(t, f)
	common := []string{"--model", f.Model, "--data", data, "--search", f.Index, "--max-turns", "1", "--max-turn-tokens", "4", "--quiet"}
	cmds := map[string][]string{
		"eval":      append([]string{"eval", "--adapters", f.Adapters["unified"]}, common...),
		"leas":      append([]string{"leas", "-k", "1", "--reason-adapters", f.Adapters["reason"], "--tool-adapters", f.Adapters["tool"], "--unified-adapters", f.Adapters["unified"]}, common...),
		"gradangle": append([]string{"gradangle", "--adapters", f.Adapters["unified"]}, common...),
	}
	cases := []struct {
		cmds []string
		args []string
		want string
	}{
		{[]string{"eval", "leas", "gradangle"}, []string{"--max-turn-tokens", "0"}, "--max-turn-tokens 0: must be ≥ 1"},
		{[]string{"eval", "leas", "gradangle"}, []string{"--docs", "0"}, "--docs 0: must be ≥ 1"},
		{[]string{"eval", "leas", "gradangle"}, []string{"--docs", "-1"}, "--docs -1: must be ≥ 1"},
		{[]string{"eval", "leas", "gradangle"}, []string{"--limit", "-5"}, "--limit -5: must be ≥ 0"},
		{[]string{"eval", "leas", "gradangle"}, []string{"--max-turns", "-1"}, "--max-turns -1: must be ≥ 0"},
		{[]string{"eval", "leas", "gradangle"}, []string{"--batch", "-3"}, "--batch -3: must be ≥ 1"},
		{[]string{"eval"}, []string{"--batch", "0"}, "--batch 0: must be ≥ 1"},
		{[]string{"leas"}, []string{"-k", "0"}, "-k 0: must be ≥ 1"},
		{[]string{"gradangle"}, []string{"--group", "0"}, "--group 0: must be ≥ 1"},
		{[]string{"leas"}, []string{"--alpha", "-1"}, "--alpha -1 must be a finite number > 0"},
		{[]string{"leas"}, []string{"--alpha", "NaN"}, "--alpha NaN must be a finite number > 0"},
	}
	for _, tc := range cases {
		for _, cmd := range tc.cmds {
			out := filepath.Join(t.TempDir(), "out")
			args := append(append(append([]string{}, cmds[cmd]...), tc.args...), "-o", out)
			_, err := runDartc(t, "", args...)
			if err == nil || !strings.Contains(err.Error(), cmd+": "+tc.want) {
				t.Errorf("dartc %s %v: %v; want %q", cmd, tc.args, err, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("dartc %s %v: wrote %s before refusing (%v)", cmd, tc.args, out, err)
			}
		}
	}
}
