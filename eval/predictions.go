package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/dartc/dartc/internal/jsonerr"
	"github.com/dartc/dartc/qa"
)

// Prediction is one scored line of a predictions file: gold answers and
// either the extracted answer (pred) or the whole response.
type Prediction struct {
	ID       string
	Source   string
	Golden   []string
	Pred     string
	HasPred  bool // pred given: Response is not consulted
	Response string
}

// Score scores the prediction: pred as is, or the last <answer> of the
// response (0 when it has none).
func (p Prediction) Score() qa.Score {
	if p.HasPred {
		return qa.ScorePrediction(p.Pred, p.Golden)
	}
	return qa.ScoreResponse(p.Response, p.Golden)
}

// ReadPredictions reads a JSONL predictions file. Each row needs
// golden_answers (a list, or one string) and pred or response; data_source
// or source names its dataset, else defaultSource (DatasetName of the path
// when empty).
func ReadPredictions(path, defaultSource string) ([]Prediction, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	b = TrimBOM(b)
	if defaultSource == "" {
		defaultSource = DatasetName(path)
	}
	var out []Prediction
	var empty emptyGolds
	rows := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var row struct {
			ID         id              `json:"id"`
			Golden     json.RawMessage `json:"golden_answers"`
			Pred       *string         `json:"pred"`
			Response   *string         `json:"response"`
			DataSource string          `json:"data_source"`
			Source     string          `json:"source"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("eval: %s:%d: %w", path, line, jsonerr.Describe(err))
		}
		var golds []string
		if row.Golden != nil {
			if golds, err = parseAnswers("golden_answers", row.Golden); err != nil {
				return nil, fmt.Errorf("eval: %s:%d: %w", path, line, err)
			}
		}
		if len(golds) == 0 {
			return nil, fmt.Errorf("eval: %s:%d: no golden_answers (a list of gold answers is required to score)", path, line)
		}
		if row.Pred == nil && row.Response == nil {
			return nil, fmt.Errorf("eval: %s:%d: %w", path, line, errors.New(`need "pred" (the answer) or "response" (the full model output)`))
		}
		rows++
		var ok bool
		if golds, ok = empty.filter(golds, fmt.Sprintf("line %d", line)); !ok {
			continue
		}
		p := Prediction{ID: string(row.ID), Golden: golds, Source: defaultSource}
		if row.Pred != nil {
			p.Pred, p.HasPred = *row.Pred, true
		} else {
			p.Response = *row.Response
		}
		switch {
		case row.DataSource != "":
			p.Source = row.DataSource
		case row.Source != "":
			p.Source = row.Source
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	if err := empty.finish(path, rows, len(out)); err != nil {
		return nil, err
	}
	return out, nil
}

// ScorePredictions scores every prediction into a Scoreboard.
func ScorePredictions(ps []Prediction) *Scoreboard {
	var b Scoreboard
	for _, p := range ps {
		b.Add(p.Source, p.Score())
	}
	return &b
}
