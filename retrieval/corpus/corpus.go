package corpus

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/dartc/dartc/internal/jsonerr"
)

// Format names a corpus row layout.
type Format string

// The supported layouts.
const (
	FlashRAG  Format = "flashrag"
	TitleText Format = "title-text"
)

// ParseFormat checks a user-given format name.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case FlashRAG, TitleText:
		return Format(s), nil
	}
	return "", fmt.Errorf("corpus: unknown format %q (want %q for {\"id\",\"contents\"} rows or %q for {\"title\",\"text\"} rows)", s, FlashRAG, TitleText)
}

// Row is one passage of a corpus.
type Row struct {
	ID       string
	Contents string
	Line     int
}

// Reader reads rows one at a time from a JSONL stream.
type Reader struct {
	r      *bufio.Reader
	format Format
	line   int
	rows   int
}

// NewReader returns a Reader of the given format over r.
func NewReader(r io.Reader, format Format) (*Reader, error) {
	if _, err := ParseFormat(string(format)); err != nil {
		return nil, err
	}
	return &Reader{r: bufio.NewReaderSize(r, 1<<20), format: format}, nil
}

type flashRAGRow struct {
	ID       json.RawMessage `json:"id"`
	Contents *string         `json:"contents"`
}

type titleTextRow struct {
	Title *string `json:"title"`
	Text  *string `json:"text"`
}

// Next returns the next row, or io.EOF after the last one.
func (r *Reader) Next() (Row, error) {
	for {
		line, err := r.r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return Row{}, io.EOF
			}
			return Row{}, fmt.Errorf("corpus: read line %d: %w", r.line+1, err)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Row{}, fmt.Errorf("corpus: read line %d: %w", r.line+1, err)
		}
		r.line++
		if r.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		row, perr := r.parse(line)
		if perr != nil {
			return Row{}, fmt.Errorf("corpus: line %d: %w", r.line, perr)
		}
		row.Line = r.line
		r.rows++
		return row, nil
	}
}

func (r *Reader) parse(line []byte) (Row, error) {
	switch r.format {
	case FlashRAG:
		var v flashRAGRow
		if err := json.Unmarshal(line, &v); err != nil {
			return Row{}, rowError(err)
		}
		if v.Contents == nil {
			return Row{}, errors.New(`missing "contents" (for {"title","text"} rows use --format title-text)`)
		}
		id, err := idText(v.ID)
		if err != nil {
			return Row{}, err
		}
		return Row{ID: id, Contents: *v.Contents}, nil
	default:
		var v titleTextRow
		if err := json.Unmarshal(line, &v); err != nil {
			return Row{}, rowError(err)
		}
		if v.Title == nil || v.Text == nil {
			return Row{}, errors.New(`missing "title" or "text" (for {"id","contents"} rows use --format flashrag)`)
		}
		return Row{ID: fmt.Sprint(r.rows), Contents: "\"" + *v.Title + "\"\n" + *v.Text}, nil
	}
}

func idText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New(`missing "id"`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf(`"id" must be a string or a number, got %s`, raw)
}

// rowError explains why a line did not decode: a field of the wrong kind,
// or not JSON at all.
func rowError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return jsonerr.Describe(err)
	}
	return fmt.Errorf("not a JSON object: %w", err)
}
