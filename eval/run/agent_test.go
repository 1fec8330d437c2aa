package run_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dartc/dartc/eval/run"
	"github.com/dartc/dartc/eval/run/runtest"
	"github.com/dartc/dartc/retrieval/connect"
	"github.com/dartc/dartc/retrieval/httpretrieve"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
)

func TestMain(m *testing.M) {
	code := m.Run()
	runtest.Cleanup()
	os.Exit(code)
}

func newAgent(tb testing.TB, f runtest.Fixture, turns, tokens int) *agent.Agent {
	tb.Helper()
	s, err := connect.Open(f.Index, httpretrieve.ClientOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	a, err := agent.New(agent.Config{Model: f.Model, Adapters: f.Adapters["unified"], Searcher: s,
		Session: &runtime.Options{IntraOpThreads: 1}, MaxTurns: turns, MaxTurnTokens: tokens})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

// TestAgentRollouts runs the driver on the real agent (greedy, compiled
// tiny Qwen2, BM25 over the bundled corpus): every question gets a
// record with the agent's response, and greedy records do not depend on
// how questions are batched.
func TestAgentRollouts(t *testing.T) {
	f := runtest.Get(t)
	a := newAgent(t, f, 1, 8)
	data := []string{filepath.Join(f.Data, "nq_test.jsonl")}
	var runs [][]run.Record
	for _, batch := range []int{1, 3} {
		dir := t.TempDir()
		res, err := run.Run(context.Background(), run.AgentRoller{Agent: a}, run.Options{Datasets: data, Dir: dir, Limit: 3, Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		recs, _, err := run.ReadRecords(filepath.Join(dir, run.PredictionsFile))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || res.Rolled != 3 || res.Policy == 0 {
			t.Fatalf("batch %d: %d records, %d rolled, %d policy tokens", batch, len(recs), res.Rolled, res.Policy)
		}
		for _, r := range recs {
			// One search turn and a final turn of at most 8 tokens each.
			if r.Response == "" || r.PolicyTokens == 0 || r.PolicyTokens > 16 || r.Turns < 1 || r.Stop == "" {
				t.Errorf("batch %d: record %+v", batch, r)
			}
		}
		runs = append(runs, recs)
	}
	for i := range runs[0] {
		x, y := runs[0][i], runs[1][i]
		if x.ID != y.ID || x.Response != y.Response || !slices.Equal(x.Searches, y.Searches) {
			t.Errorf("question %s: batch 1 gives %q, batch 3 gives %q", x.ID, x.Response, y.Response)
		}
	}
}

// BenchmarkEval measures `dartc eval`'s questions/s on the compiled tiny
// Qwen2 with the local BM25 index, greedy, Search-R1's default turns (4
// search turns, 500 tokens each), 8 questions per batch.
func BenchmarkEval(b *testing.B) {
	f := runtest.Get(b)
	for _, tc := range []struct {
		name          string
		turns, tokens int
	}{{"defaults", agent.DefaultMaxTurns, agent.DefaultMaxTurnTokens}, {"turn-tokens-64", agent.DefaultMaxTurns, 64}} {
		b.Run(tc.name, func(b *testing.B) {
			a := newAgent(b, f, tc.turns, tc.tokens)
			data := []string{filepath.Join(f.Data, "nq_test.jsonl")}
			var rolled, policy int
			var secs float64
			for b.Loop() {
				res, err := run.Run(context.Background(), run.AgentRoller{Agent: a}, run.Options{Datasets: data, Dir: b.TempDir(), Limit: 8, Batch: 8})
				if err != nil {
					b.Fatal(err)
				}
				rolled, policy, secs = rolled+res.Rolled, policy+res.Policy, secs+res.Elapsed.Seconds()
			}
			b.ReportMetric(float64(rolled)/secs, "questions/s")
			b.ReportMetric(float64(policy)/secs, "tokens/s")
		})
	}
}
