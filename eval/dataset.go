package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dartc/dartc/internal/jsonerr"
	"github.com/dartc/dartc/qa"
	"github.com/parquet-go/parquet-go"
)

// Example is one benchmark question.
type Example struct {
	ID       string   `json:"id"`
	Question string   `json:"question"`
	Golden   []string `json:"golden_answers"`
	Source   string   `json:"source"`
}

// Format names a dataset file layout.
type Format string

// The supported layouts.
const (
	FlashRAG        Format = "flashrag"
	R1Searcher      Format = "r1-searcher"
	SearchR1Parquet Format = "search-r1-parquet"
)

// ErrUnknownFormat is returned by Load for a file whose layout it cannot tell.
var ErrUnknownFormat = errors.New("eval: unknown dataset format")

// Load reads a dataset file, telling the format from its extension
// (.parquet) or, for JSONL, from the keys of its first row
// (golden_answers: FlashRAG; answer: R1-Searcher).
func Load(path string) ([]Example, error) {
	if strings.HasSuffix(path, ".parquet") {
		return LoadSearchR1Parquet(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	format, err := sniffJSONL(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnknownFormat, path, err)
	}
	name := DatasetName(path)
	if format == FlashRAG {
		return parseJSONL(path, b, name, flashRAGRow)
	}
	return parseJSONL(path, b, name, r1SearcherRow)
}

// LoadFlashRAG reads FlashRAG JSONL rows {id, question, golden_answers}.
func LoadFlashRAG(path string) ([]Example, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return parseJSONL(path, b, DatasetName(path), flashRAGRow)
}

// LoadR1Searcher reads R1-Searcher JSONL rows {idx, question, answer}.
func LoadR1Searcher(path string) ([]Example, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return parseJSONL(path, b, DatasetName(path), r1SearcherRow)
}

// TrimBOM drops a leading UTF-8 byte order mark, which some editors write
// at the start of a text file.
func TrimBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

func sniffJSONL(b []byte) (Format, error) {
	b = TrimBOM(b)
	for line := range bytes.Lines(b) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(line, &keys); err != nil {
			return "", fmt.Errorf("first row is not a JSON object: %v", err)
		}
		if _, ok := keys["golden_answers"]; ok {
			return FlashRAG, nil
		}
		if _, ok := keys["answer"]; ok {
			return R1Searcher, nil
		}
		return "", errors.New(`first row has neither "golden_answers" (FlashRAG) nor "answer" (R1-Searcher)`)
	}
	return "", errors.New("no rows")
}

type rowParser func(line []byte, lineNo int, source string) (Example, error)

func parseJSONL(path string, b []byte, source string, parse rowParser) ([]Example, error) {
	b = TrimBOM(b)
	var out []Example
	var empty emptyGolds
	r := bufio.NewReader(bytes.NewReader(b))
	rows := 0
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			rows++
			ex, perr := parse(line, lineNo, source)
			if perr != nil {
				return nil, fmt.Errorf("eval: %s:%d: %w", path, lineNo, perr)
			}
			var ok bool
			if ex.Golden, ok = empty.filter(ex.Golden, fmt.Sprintf("line %d", lineNo)); ok {
				out = append(out, ex)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("eval: %s: %w", path, err)
		}
	}
	if err := empty.finish(path, rows, len(out)); err != nil {
		return nil, err
	}
	return out, nil
}

// emptyGolds drops gold answers that normalize to "" (only articles,
// punctuation or spaces: "The", "A", "."): "" is a substring of every
// normalized prediction, so such a gold gives SubEM 1 to any answer, and
// EM 1 to "the". A question left with no other gold cannot be scored and
// is left out. One warning per file says what was dropped.
type emptyGolds struct {
	answers, questions int
	first              string // where the first one was, for the warning
}

// filter returns golds without the empty ones, and false when none is
// left; where says which row, for the warning.
func (e *emptyGolds) filter(golds []string, where string) ([]string, bool) {
	kept := golds[:0:0]
	for _, g := range golds {
		if qa.Normalize(g) != "" {
			kept = append(kept, g)
			continue
		}
		if e.answers == 0 {
			e.first = fmt.Sprintf("%s: %q", where, g)
		}
		e.answers++
	}
	if len(kept) == len(golds) {
		return golds, true
	}
	if len(kept) == 0 {
		e.questions++
		return nil, false
	}
	return kept, true
}

// finish warns about what filter dropped and refuses a file left with no
// question (rows: the rows read, kept: those filter kept).
func (e *emptyGolds) finish(path string, rows, kept int) error {
	if rows == 0 {
		return fmt.Errorf("eval: %s: no rows", path)
	}
	if e.answers > 0 {
		slog.Warn(`eval: ignoring gold answers that normalize to "" (only articles, punctuation or spaces): they match every prediction`,
			"file", path, "answers", e.answers, "questions_left_out", e.questions, "first", e.first)
	}
	if kept == 0 {
		return fmt.Errorf(`eval: %s: every row's gold answers normalize to "" (only articles, punctuation or spaces; first at %s), so no question can be scored: check the gold answer field`, path, e.first)
	}
	return nil
}

// parseAnswers decodes gold answer field: a string, a number or a list of
// them (datasets differ; numbers appear as years and counts). A null, of
// the field or of an item, is an error: read as "" it would be a substring
// of every prediction.
func parseAnswers(field string, raw json.RawMessage) ([]string, error) {
	if string(raw) == "null" {
		return nil, fmt.Errorf("%q is null: want a gold answer string or a list of them", field)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		list = []json.RawMessage{raw}
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		if string(item) == "null" {
			return nil, fmt.Errorf("%q item %d of %d is null: want a string or a number (remove the item, or fix the dataset)", field, i+1, len(list))
		}
		var s string
		if err := json.Unmarshal(item, &s); err == nil {
			out = append(out, s)
			continue
		}
		var n json.Number
		if err := json.Unmarshal(item, &n); err == nil {
			out = append(out, n.String())
			continue
		}
		return nil, fmt.Errorf("%q: gold answer %s is neither a string nor a number", field, item)
	}
	return out, nil
}

// id decodes an identifier that is a string or a number.
type id string

func (i *id) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*i = id(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id %s is neither a string nor a number", b)
	}
	*i = id(n.String())
	return nil
}

func check(ex Example) (Example, error) {
	ex.Question = strings.TrimSpace(ex.Question)
	if ex.Question == "" {
		return ex, errors.New("question is missing or empty")
	}
	if len(ex.Golden) == 0 {
		return ex, errors.New("no gold answer")
	}
	return ex, nil
}

func flashRAGRow(line []byte, lineNo int, source string) (Example, error) {
	var row struct {
		ID       id              `json:"id"`
		Question string          `json:"question"`
		Golden   json.RawMessage `json:"golden_answers"`
		Source   string          `json:"data_source"`
	}
	if err := json.Unmarshal(line, &row); err != nil {
		return Example{}, jsonerr.Describe(err)
	}
	if row.Golden == nil {
		return Example{}, errors.New(`no "golden_answers" key (is this an R1-Searcher file?)`)
	}
	golds, err := parseAnswers("golden_answers", row.Golden)
	if err != nil {
		return Example{}, err
	}
	ex := Example{ID: string(row.ID), Question: row.Question, Golden: golds, Source: source}
	if row.Source != "" {
		ex.Source = row.Source
	}
	if ex.ID == "" {
		ex.ID = strconv.Itoa(lineNo - 1)
	}
	return check(ex)
}

func r1SearcherRow(line []byte, lineNo int, source string) (Example, error) {
	var row struct {
		Idx      *id             `json:"idx"`
		Question string          `json:"question"`
		Answer   json.RawMessage `json:"answer"`
	}
	if err := json.Unmarshal(line, &row); err != nil {
		return Example{}, jsonerr.Describe(err)
	}
	if row.Answer == nil {
		return Example{}, errors.New(`no "answer" key (is this a FlashRAG file?)`)
	}
	golds, err := parseAnswers("answer", row.Answer)
	if err != nil {
		return Example{}, err
	}
	ex := Example{Question: row.Question, Golden: golds, Source: source}
	if row.Idx != nil {
		ex.ID = string(*row.Idx)
	} else {
		ex.ID = strconv.Itoa(lineNo - 1)
	}
	return check(ex)
}

// searchR1Row is the part of the Search-R1 parquet schema the loader reads.
type searchR1Row struct {
	ID            string   `parquet:"id,optional"`
	Question      string   `parquet:"question,optional"`
	GoldenAnswers []string `parquet:"golden_answers,list,optional"`
	DataSource    string   `parquet:"data_source,optional"`
	RewardModel   struct {
		GroundTruth struct {
			Target []string `parquet:"target,list,optional"`
		} `parquet:"ground_truth,optional"`
	} `parquet:"reward_model,optional"`
}

// LoadSearchR1Parquet reads a Search-R1 / veRL parquet file. The gold answers
// are golden_answers, or reward_model.ground_truth.target when that is empty.
func LoadSearchR1Parquet(path string) ([]Example, error) {
	rows, err := parquet.ReadFile[searchR1Row](path)
	if err != nil {
		return nil, fmt.Errorf("eval: read parquet %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("eval: %s: no rows", path)
	}
	name := DatasetName(path)
	out := make([]Example, 0, len(rows))
	var empty emptyGolds
	for i, r := range rows {
		ex := Example{ID: r.ID, Question: r.Question, Golden: r.GoldenAnswers, Source: r.DataSource}
		if len(ex.Golden) == 0 {
			ex.Golden = r.RewardModel.GroundTruth.Target
		}
		if ex.Source == "" {
			ex.Source = name
		}
		if ex.ID == "" {
			ex.ID = strconv.Itoa(i)
		}
		ex, err := check(ex)
		if err != nil {
			return nil, fmt.Errorf("eval: %s: row %d: %w", path, i, err)
		}
		var ok bool
		if ex.Golden, ok = empty.filter(ex.Golden, fmt.Sprintf("row %d", i)); ok {
			out = append(out, ex)
		}
	}
	if err := empty.finish(path, len(rows), len(out)); err != nil {
		return nil, err
	}
	return out, nil
}

// DatasetName derives a dataset's short name from its file name: the base
// name without extension and without a trailing split or size marker
// (_test, _dev, _train, _search, _500, _preds…); a bare split name such as
// test.jsonl takes its directory's name instead.
func DatasetName(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if isSplit(base) {
		return DatasetName(filepath.Dir(path))
	}
	for {
		i := strings.LastIndexByte(base, '_')
		if i <= 0 {
			return base
		}
		suffix := base[i+1:]
		if _, err := strconv.Atoi(suffix); err != nil && !isSplit(suffix) && !isMarker(suffix) {
			return base
		}
		base = base[:i]
	}
}

func isSplit(s string) bool {
	switch s {
	case "test", "dev", "train", "val", "validation":
		return true
	}
	return false
}

// isMarker reports file-name suffixes that say what a file holds rather
// than which dataset.
func isMarker(s string) bool {
	switch s {
	case "search", "pred", "preds", "predictions", "output", "outputs", "results":
		return true
	}
	return false
}
