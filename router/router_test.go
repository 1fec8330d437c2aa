package router

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dartc/dartc/models/prompt"
	"github.com/dartc/dartc/models/tokenizer"
)

var (
	tokOnce sync.Once
	tok     *tokenizer.Tokenizer
	tokErr  error
)

func qwen2(tb testing.TB) *tokenizer.Tokenizer {
	tb.Helper()
	tokOnce.Do(func() { tok, tokErr = tokenizer.Load("../data/qwen2-tokenizer") })
	if tokErr != nil {
		tb.Fatal(tokErr)
	}
	return tok
}

// sequence is a token sequence with the loss mask that says which tokens
// the policy generated.
type sequence struct {
	ids       []int
	generated []bool
}

func (s *sequence) add(ids []int, generated bool) {
	s.ids = append(s.ids, ids...)
	for range ids {
		s.generated = append(s.generated, generated)
	}
}

// incremental runs a Router over the sequence token by token.
func incremental(v Vocabulary, s sequence) []Role {
	r := New(v, SearchR1)
	roles := make([]Role, len(s.ids))
	for t, id := range s.ids {
		roles[t] = r.Push(id, s.generated[t])
	}
	return roles
}

var queryPattern = regexp.MustCompile(`(?s)<search>.*?</search>`)

// queryTokens is the reference the roles are checked against, written from
// the definition rather than from the router's rule: in each run of
// generated tokens, a query token is one that starts at or after the end of
// "<search>" and before the end of the matching "</search>" (byte offsets in
// the run's text), or anywhere after a "<search>" that is not closed. It also
// marks the last position of a run left inside an unclosed search.
func queryTokens(v Vocabulary, s sequence) (query, openAtRunEnd []bool) {
	query = make([]bool, len(s.ids))
	openAtRunEnd = make([]bool, len(s.ids))
	for start := 0; start < len(s.ids); {
		if !s.generated[start] {
			start++
			continue
		}
		end := start
		for end < len(s.ids) && s.generated[end] {
			end++
		}
		var text []byte
		starts := make([]int, 0, end-start)
		for _, id := range s.ids[start:end] {
			starts = append(starts, len(text))
			text = append(text, v.TokenBytes(id)...)
		}
		last := 0
		for _, m := range queryPattern.FindAllIndex(text, -1) {
			openEnd, closeEnd := m[0]+len("<search>"), m[1]
			for i, st := range starts {
				if st >= openEnd && st < closeEnd {
					query[start+i] = true
				}
			}
			last = m[1]
		}
		// An open tag after the last closed span starts a query that the run
		// does not finish: the tokens after it are query tokens, and the run
		// ends inside a search.
		if k := bytes.Index(text[last:], []byte("<search>")); k >= 0 {
			openEnd := last + k + len("<search>")
			for i, st := range starts {
				if st >= openEnd {
					query[start+i] = true
				}
			}
			openAtRunEnd[end-1] = true
		}
		start = end
	}
	return query, openAtRunEnd
}

// checkRoles checks both the Router and Roles against the reference: the
// position before a query token is tool, the last token of a generated run
// is tool when the run ends inside a search, and nothing else is tool.
func checkRoles(t *testing.T, v Vocabulary, s sequence, name string) (tools int) {
	t.Helper()
	inc := incremental(v, s)
	batch := Roles(v, s.ids, s.generated, SearchR1)
	if !slices.Equal(inc, batch) {
		for i := range inc {
			if inc[i] != batch[i] {
				t.Fatalf("%s: position %d: incremental %v, batch %v", name, i, inc[i], batch[i])
			}
		}
	}
	query, openAtEnd := queryTokens(v, s)
	for i := range s.ids {
		want := Reason
		if s.generated[i] && ((i+1 < len(s.ids) && query[i+1]) || openAtEnd[i]) {
			want = Tool
		}
		if inc[i] != want {
			var txt []byte
			for j := max(0, i-15); j < min(len(s.ids), i+5); j++ {
				txt = append(txt, v.TokenBytes(s.ids[j])...)
				if !s.generated[j] {
					txt = append(txt, '#')
				}
				txt = append(txt, '|')
			}
			t.Logf("context %q", txt)
			t.Fatalf("%s: position %d (token %q, next %q): role %v, want %v", name, i,
				v.TokenBytes(s.ids[i]), nextBytes(v, s.ids, i), inc[i], want)
		}
		if inc[i] == Tool {
			tools++
		}
	}
	return tools
}

func nextBytes(v Vocabulary, ids []int, i int) []byte {
	if i+1 < len(ids) {
		return v.TokenBytes(ids[i+1])
	}
	return nil
}

// caseRollouts tokenizes the two rollouts of Search-R1's case.txt the way
// the agent loop builds them: the prompt (with added tokens) and each
// observation are inserted, the text between them is generated.
func caseRollouts(t *testing.T) []sequence {
	tk := qwen2(t)
	raw, err := os.ReadFile("../models/tokenizer/testdata/case.txt")
	if err != nil {
		t.Fatal(err)
	}
	first, second, ok := strings.Cut(string(raw), "\n\n\n\n<|im_start|>")
	if !ok {
		t.Fatal("case.txt: no blank lines between the rollouts")
	}
	obs := regexp.MustCompile(`(?s)\n\n<information>.*?</information>\n\n`)
	var out []sequence
	for _, text := range []string{first, "<|im_start|>" + second} {
		cut := strings.Index(text, prompt.GenerationPrompt) + len(prompt.GenerationPrompt)
		var s sequence
		s.add(tk.EncodeWithSpecial(text[:cut]), false)
		response := text[cut:]
		from := 0
		for _, m := range obs.FindAllStringIndex(response, -1) {
			s.add(tk.Encode(response[from:m[0]]), true)
			s.add(tk.Encode(response[m[0]:m[1]]), false)
			from = m[1]
		}
		s.add(tk.Encode(response[from:]), true)
		if back, _ := tk.Decode(s.ids); back != text {
			t.Fatal("case rollout does not round-trip")
		}
		out = append(out, s)
	}
	return out
}

// TestCaseRollouts: on case.txt exactly the positions that predict query
// tokens are tool.
func TestCaseRollouts(t *testing.T) {
	tk := qwen2(t)
	rs := caseRollouts(t)
	wantQueries := []string{
		" Paul Walker's cars in Fast and Furious </search>" + " list of cars paul walker drove in Fast and Furious </search>",
		" origin of heart's electrical impulses </search>",
	}
	for i, s := range rs {
		tools := checkRoles(t, tk, s, fmt.Sprintf("rollout %d", i))
		// The tool positions predict exactly the queries' bytes.
		roles := Roles(tk, s.ids, s.generated, SearchR1)
		var predicted []byte
		for p := 0; p+1 < len(s.ids); p++ {
			if roles[p] == Tool {
				predicted = append(predicted, tk.TokenBytes(s.ids[p+1])...)
			}
		}
		if string(predicted) != wantQueries[i] {
			t.Errorf("rollout %d: tool positions predict %q, want %q", i, predicted, wantQueries[i])
		}
		if tools == 0 || roles[len(roles)-1] != Reason {
			t.Errorf("rollout %d: %d tool positions, last role %v", i, tools, roles[len(roles)-1])
		}
	}
}

// straddlers returns vocabulary tokens that hold '<' or '>' or a piece of a
// tag, so that sampled sequences cut tags at every kind of edge.
func straddlers(tk *tokenizer.Tokenizer) [][]int {
	var out [][]int
	for id := 0; id < 151643; id++ {
		b := tk.TokenBytes(id)
		if bytes.ContainsAny(b, "<>") || (len(b) >= 2 && (strings.Contains("</search>", string(b)) || strings.Contains(string(b), "search"))) {
			out = append(out, []int{id})
		}
	}
	return out
}

// TestIncrementalEqualsBatchSampled samples sequences of words, tags, tag
// fragments, tokens that straddle tag edges and random ids, with inserted
// runs between generated ones, and checks every position.
func TestIncrementalEqualsBatchSampled(t *testing.T) {
	tk := qwen2(t)
	rng := rand.New(rand.NewPCG(5, 1))
	words := []string{" the", " capital", " of", " France", "?", "\n", "\n\n", " ", "Paris", "</think>", "<think>",
		"<answer>", " </answer>", "中文", "'s", "<", ">", "/", "search", "<search>", "</search>", " <search>", "<search> ",
		"</search>\n\n", "></", "<sea", "rch>", "</sea", "<information>", "</information>", "<<search>>", "</search></search>"}
	var pieces [][]int
	for _, w := range words {
		pieces = append(pieces, tk.Encode(w))
	}
	straddle := straddlers(tk)
	if len(straddle) < 100 {
		t.Fatalf("only %d straddling tokens found", len(straddle))
	}
	totalTools, totalQueries := 0, 0
	for n := 0; n < 3000; n++ {
		var s sequence
		s.add(tk.EncodeWithSpecial(prompt.SearchR1Chat("who is it", "")), false)
		target := len(s.ids) + 1 + rng.IntN(150)
		for len(s.ids) < target {
			generated := rng.IntN(8) != 0
			var ids []int
			switch k := rng.IntN(10); {
			case k < 5:
				ids = pieces[rng.IntN(len(pieces))]
			case k < 8:
				ids = straddle[rng.IntN(len(straddle))]
			case k < 9:
				ids = tk.Encode(words[rng.IntN(len(words))] + words[rng.IntN(len(words))])
			default:
				ids = []int{rng.IntN(tk.VocabSize())}
			}
			s.add(ids, generated)
		}
		totalTools += checkRoles(t, tk, s, fmt.Sprintf("sample %d", n))
		q, _ := queryTokens(tk, s)
		for _, b := range q {
			if b {
				totalQueries++
			}
		}
	}
	// The samples must exercise the rule, not pass by having no searches.
	if totalTools < 10000 || totalQueries < 5000 {
		t.Fatalf("samples too easy: %d tool positions, %d query tokens", totalTools, totalQueries)
	}
	t.Logf("%d tool positions, %d query tokens", totalTools, totalQueries)
}

// TestPrefixStable: the roles of a prefix never change when tokens are
// appended, the property that makes incremental and batch agree.
func TestPrefixStable(t *testing.T) {
	tk := qwen2(t)
	for _, s := range caseRollouts(t) {
		full := Roles(tk, s.ids, s.generated, SearchR1)
		for k := 0; k <= len(s.ids); k += 7 {
			if got := Roles(tk, s.ids[:k], s.generated[:k], SearchR1); !slices.Equal(got, full[:k]) {
				t.Fatalf("prefix %d: roles differ from the full sequence's", k)
			}
		}
	}
}

// TestStraddlingRules pins the documented edge cases with literal tokens.
func TestStraddlingRules(t *testing.T) {
	v := literalVocab{"<", "search", ">", "> who", " q", "</", "></", ">\n\n", " <search", "><search>", "x"}
	cases := []struct {
		name   string
		tokens []int
		want   []Role
	}{
		{"plain", []int{0, 1, 2, 4, 5, 1, 2, 10}, []Role{0, 0, 1, 1, 1, 1, 0, 0}},
		{"open tag carries query text", []int{0, 1, 3, 4, 5, 1, 7}, []Role{0, 0, 1, 1, 1, 1, 0}},
		{"close tag carries more text", []int{8, 2, 4, 5, 1, 7, 10}, []Role{0, 1, 1, 1, 1, 0, 0}},
		{"close and reopen in one token", []int{8, 2, 4, 5, 1, 9, 4, 6, 1, 2}, []Role{0, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
		{"unclosed at end", []int{8, 3, 4}, []Role{0, 1, 1}},
	}
	for _, c := range cases {
		s := sequence{ids: c.tokens, generated: make([]bool, len(c.tokens))}
		for i := range s.generated {
			s.generated[i] = true
		}
		if got := incremental(v, s); !slices.Equal(got, c.want) {
			t.Errorf("%s: incremental %v, want %v", c.name, got, c.want)
		}
		if got := Roles(v, c.tokens, nil, SearchR1); !slices.Equal(got, c.want) {
			t.Errorf("%s: batch %v, want %v", c.name, got, c.want)
		}
	}
}

// TestInsertedTokensReset: tags in inserted text change nothing, and an
// inserted token ends an open search.
func TestInsertedTokensReset(t *testing.T) {
	v := literalVocab{"<search>", " q", "</search>", "x"}
	ids := []int{0, 1, 2, 3, 0, 1, 3, 3, 1}
	gen := []bool{false, false, false, true, true, true, false, true, true}
	want := []Role{0, 0, 0, 0, 1, 1, 0, 0, 0}
	if got := Roles(v, ids, gen, SearchR1); !slices.Equal(got, want) {
		t.Errorf("batch %v, want %v", got, want)
	}
	if got := incremental(v, sequence{ids, gen}); !slices.Equal(got, want) {
		t.Errorf("incremental %v, want %v", got, want)
	}
}

// literalVocab is a toy vocabulary: id i spells the i-th string.
type literalVocab []string

func (l literalVocab) TokenBytes(id int) []byte {
	if id < 0 || id >= len(l) {
		return nil
	}
	return []byte(l[id])
}

// BenchmarkRouterPush measures the router's cost per generated token.
func BenchmarkRouterPush(b *testing.B) {
	tk := qwen2(b)
	ids := tk.Encode(strings.Repeat("<think>x</think>\n<search> who wrote hamlet </search>\n\n", 100))
	r := New(tk, SearchR1)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Push(ids[i%len(ids)], true)
	}
}
