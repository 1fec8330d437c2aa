package leas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/dartc/dartc/internal/atomicfile"
	"github.com/dartc/dartc/internal/jsonerr"

	"github.com/dartc/dartc/eval/stats"
	"github.com/dartc/dartc/internal/plotpng"
)

// byConfig maps configuration names to per-configuration values in JSON.
func byConfig[T any](v [NumConfigs]T) map[string]T {
	m := make(map[string]T, NumConfigs)
	for i, x := range v {
		m[Config(i).String()] = x
	}
	return m
}

type questionJSON struct {
	ID      string         `json:"id"`
	K       int            `json:"k"`
	Correct map[string]int `json:"correct"`
}

// MarshalJSON writes Correct as {"M_Base": c, …}.
func (q Question) MarshalJSON() ([]byte, error) {
	return json.Marshal(questionJSON{ID: q.ID, K: q.K, Correct: byConfig(q.Correct)})
}

// UnmarshalJSON reads {"id", "k", "correct": {"M_Base": c, …}} and requires
// all six configurations.
func (q *Question) UnmarshalJSON(b []byte) error {
	var j questionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*q = Question{ID: j.ID, K: j.K}
	for name, c := range j.Correct {
		cfg, err := ParseConfig(name)
		if err != nil {
			return err
		}
		q.Correct[cfg] = c
	}
	for m := range NumConfigs {
		if _, ok := j.Correct[m.String()]; !ok {
			return fmt.Errorf("leas: question %q has no count for %v", j.ID, m)
		}
	}
	return nil
}

// MarshalJSON writes one result line with named configurations and terms.
func (r Result) MarshalJSON() ([]byte, error) {
	lambda := make(map[string]float64, Terms)
	for i, v := range r.Lambda {
		lambda[TermNames[i]] = v
	}
	return json.Marshal(struct {
		ID           string             `json:"id"`
		K            int                `json:"k"`
		Correct      map[string]int     `json:"correct"`
		Smoothed     map[string]float64 `json:"smoothed"`
		Lambda       map[string]float64 `json:"lambda"`
		Lambda23     float64            `json:"lambda_23"`
		Interference bool               `json:"interference"`
	}{r.ID, r.K, byConfig(r.Correct), byConfig(r.Smoothed), lambda, r.Lambda23(), r.Interference})
}

// ReadQuestions reads JSONL questions (one Question per line).
func ReadQuestions(path string) ([]Question, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("leas: %w", err)
	}
	var qs []Question
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var q Question
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			return nil, fmt.Errorf("leas: %s:%d: %w", path, line, jsonerr.Describe(err))
		}
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("leas: %s: %w", path, err)
	}
	return qs, nil
}

// WriteResults writes one JSON line per result, atomically.
func WriteResults(path string, rs []Result) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("leas: encode %q: %w", r.ID, err)
		}
	}
	if err := atomicfile.WriteFile(path, b.Bytes()); err != nil {
		return fmt.Errorf("leas: write %s: %w", path, err)
	}
	return nil
}

// WriteSummary writes s as indented JSON, atomically.
func WriteSummary(path string, s Summary) error {
	nullable := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	b, err := json.MarshalIndent(struct {
		Questions              int                `json:"questions"`
		InterferenceFraction   *float64           `json:"interference_fraction"`
		Lambda23               stats.Distribution `json:"lambda_23"`
		UnifiedSolved          stats.Distribution `json:"lambda_23_when_unified_solved"`
		UnifiedFailed          stats.Distribution `json:"lambda_23_when_unified_failed"`
		InterferenceWhenSolved *float64           `json:"interference_when_unified_solved"`
		InterferenceWhenFailed *float64           `json:"interference_when_unified_failed"`
		Corr                   *float64           `json:"corr_unified_accuracy_lambda_23"`
	}{s.Questions, nullable(s.InterferenceFraction), s.Lambda23, s.UnifiedSolved, s.UnifiedFailed,
		nullable(s.InterferenceWhenSolved), nullable(s.InterferenceWhenFailed), nullable(s.CorrUnifiedLambda23)}, "", "  ")
	if err != nil {
		return fmt.Errorf("leas: encode summary: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("leas: write %s: %w", path, err)
	}
	return nil
}

// WriteHistogram draws the distribution of λ_23, split by whether M_Unified
// solved the question, to a PNG file.
func WriteHistogram(path string, rs []Result) error {
	var solved, failed []float64
	for _, r := range rs {
		if 2*r.Correct[Unified] >= r.K {
			solved = append(solved, r.Lambda23())
		} else {
			failed = append(failed, r.Lambda23())
		}
	}
	_, err := plotpng.WriteHistogram(path, plotpng.Histogram{
		Title:  "LEAS interaction λ_23 (tool×reason); < 0 is interference",
		XLabel: "λ_23",
		Bins:   30,
		Series: []plotpng.HistSeries{{Name: "M_Unified solved", Values: solved}, {Name: "M_Unified failed", Values: failed}},
	})
	return err
}
