package retrieval

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// Passage is one retrieved corpus entry.
type Passage struct {
	// ID is the corpus row's id, as a string.
	ID string
	// Contents is the row's text: title on the first line, body after it.
	Contents string
	// Score is the engine's relevance score (higher is better). Engines that
	// do not report scores leave it 0.
	Score float64
}

// Searcher answers a batch of queries with at most topk passages each.
// Implementations are safe for concurrent use.
type Searcher interface {
	Search(ctx context.Context, queries []string, topk int) ([][]Passage, error)
}

// ErrBadTopK is returned by searchers for topk < 1.
var ErrBadTopK = errors.New("retrieval: topk must be at least 1")

// SplitTitle splits contents the way Search-R1 does: the title is everything
// before the first newline (quotes included), the text everything after it
// (empty when there is no newline).
func SplitTitle(contents string) (title, text string) {
	title, text, _ = strings.Cut(contents, "\n")
	return title, text
}

// FormatObservation renders passages as Search-R1's observation text:
// "Doc {i}(Title: {title}) {text}\n" for each, i counting from 1. The agent
// loop wraps the result (stripped of surrounding white space, as Search-R1
// does) in <information>…</information>.
func FormatObservation(passages []Passage) string {
	var b strings.Builder
	for i, p := range passages {
		title, text := SplitTitle(p.Contents)
		b.WriteString("Doc ")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString("(Title: ")
		b.WriteString(title)
		b.WriteString(") ")
		b.WriteString(text)
		b.WriteByte('\n')
	}
	return b.String()
}
