// Command summary compares evaluations of the mini model: exact match per
// dataset with 95% Wilson intervals, before and after training, the paired
// sign test on the questions both evaluations share, and the run's length.
// It writes the demo's summary.json.
//
//	go run ./models/mini/summary -base EVAL -trained EVAL [-run RUN] [-seconds S] [-o summary.json]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

type prediction struct {
	ID     string  `json:"id"`
	Source string  `json:"data_source"`
	EM     float64 `json:"em"`
}

func readPredictions(dir string) (map[string]prediction, error) {
	f, err := os.Open(filepath.Join(dir, "predictions.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	defer f.Close()
	out := map[string]prediction{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		var p prediction
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("summary: %s/predictions.jsonl:%d: %w", dir, line, err)
		}
		out[p.Source+"\x00"+p.ID] = p
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("summary: %s/predictions.jsonl holds no prediction", dir)
	}
	return out, nil
}

// wilson is the 95% Wilson score interval of k successes in n.
func wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 0
	}
	const z = 1.959964
	p, nn := float64(k)/float64(n), float64(n)
	c := (p + z*z/(2*nn)) / (1 + z*z/nn)
	h := z / (1 + z*z/nn) * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn))
	return c - h, c + h
}

// signTest is P(Binomial(b+c, 1/2) ≥ b): the one-sided exact McNemar test.
func signTest(b, c int) float64 {
	n, p := b+c, 0.0
	for i := b; i <= n; i++ {
		lg, _ := math.Lgamma(float64(n + 1))
		li, _ := math.Lgamma(float64(i + 1))
		lr, _ := math.Lgamma(float64(n - i + 1))
		p += math.Exp(lg - li - lr - float64(n)*math.Ln2)
	}
	return p
}

type score struct {
	EM    float64    `json:"em"`
	CI95  [2]float64 `json:"ci95"`
	Right int        `json:"right"`
	N     int        `json:"n"`
}

func scoreOf(preds map[string]prediction, source string) score {
	k, n := 0, 0
	for _, p := range preds {
		if source == "" || p.Source == source {
			n++
			if p.EM == 1 {
				k++
			}
		}
	}
	lo, hi := wilson(k, n)
	return score{EM: float64(k) / math.Max(1, float64(n)), CI95: [2]float64{lo, hi}, Right: k, N: n}
}

func main() {
	base := flag.String("base", "", "eval report directory of the base model")
	trained := flag.String("trained", "", "eval report directory of the trained adapters")
	run := flag.String("run", "", "training run directory (metrics.jsonl): steps")
	seconds := flag.Float64("seconds", 0, "wall time to report")
	out := flag.String("o", "", "write the summary JSON here")
	flag.Parse()
	if err := summarize(*base, *trained, *run, *seconds, *out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func summarize(baseDir, trainedDir, run string, seconds float64, out string) error {
	if baseDir == "" || trainedDir == "" {
		return fmt.Errorf("summary: want -base and -trained eval report directories")
	}
	b, err := readPredictions(baseDir)
	if err != nil {
		return err
	}
	t, err := readPredictions(trainedDir)
	if err != nil {
		return err
	}
	sources := map[string]bool{}
	for _, p := range b {
		sources[p.Source] = true
	}
	names := []string{}
	for s := range sources {
		names = append(names, s)
	}
	sort.Strings(names)
	up, down := 0, 0
	for key, p := range b {
		q, ok := t[key]
		if !ok {
			return fmt.Errorf("summary: question %q of %s is missing from %s", p.ID, baseDir, trainedDir)
		}
		switch {
		case q.EM == 1 && p.EM != 1:
			up++
		case p.EM == 1 && q.EM != 1:
			down++
		}
	}
	sum := map[string]any{
		"base_em": scoreOf(b, "").EM, "trained_em": scoreOf(t, "").EM, "test_questions": len(b),
		"base": scoreOf(b, ""), "trained": scoreOf(t, ""),
		"per_dataset":  map[string]any{},
		"sign_test":    map[string]any{"only_trained_right": up, "only_base_right": down, "p_one_sided": signTest(up, down)},
		"seconds":      math.Round(seconds),
		"base_eval":    baseDir,
		"trained_eval": trainedDir,
	}
	fmt.Printf("| EM (95%% Wilson interval) | base | trained |\n|---|---:|---:|\n")
	for _, s := range append(names, "") {
		bs, ts := scoreOf(b, s), scoreOf(t, s)
		label := s
		if s == "" {
			label = "all"
		} else {
			sum["per_dataset"].(map[string]any)[s] = map[string]score{"base": bs, "trained": ts}
		}
		fmt.Printf("| %s (%d) | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] |\n", label, bs.N, bs.EM, bs.CI95[0], bs.CI95[1], ts.EM, ts.CI95[0], ts.CI95[1])
	}
	fmt.Printf("paired: %d questions right only after training, %d only before; one-sided sign test p = %.2g\n", up, down, signTest(up, down))
	if run != "" {
		steps, err := countSteps(run)
		if err != nil {
			return err
		}
		sum["steps"] = steps
		sum["run"] = run
	}
	if out == "" {
		return nil
	}
	js, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	return nil
}

func countSteps(run string) (int, error) {
	f, err := os.Open(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		return 0, fmt.Errorf("summary: %w", err)
	}
	defer f.Close()
	last := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for sc.Scan() {
		var m struct {
			Step int `json:"step"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err == nil && m.Step > last {
			last = m.Step
		}
	}
	return last, sc.Err()
}
