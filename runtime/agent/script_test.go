package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/models/prompt"
	"github.com/dartc/dartc/models/tokenizer"
	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/httpretrieve"
	"github.com/dartc/dartc/runtime/agent"
)

// script forces each row to write the given turns, one per generation
// call, then EOS. A turn starts when the row's length jumped (an
// observation was inserted) rather than grew by the one token drawn.
type script struct {
	tok   *tokenizer.Tokenizer
	turns []string
	eos   int64
	state map[int]*scriptRow
}

type scriptRow struct {
	lastLen, turn, pos int
	ids                []int
}

func (s *script) force(row int, tokens []int64) (int64, bool) {
	st := s.state[row]
	if st == nil {
		st = &scriptRow{lastLen: -2, turn: -1}
		s.state[row] = st
	}
	if len(tokens) != st.lastLen+1 {
		st.turn++
		st.pos = 0
		st.ids = nil
		if st.turn < len(s.turns) {
			st.ids = s.tok.Encode(s.turns[st.turn])
		}
	} else {
		st.pos++
	}
	st.lastLen = len(tokens)
	if st.pos < len(st.ids) {
		return int64(st.ids[st.pos]), true
	}
	return s.eos, true
}

// TestScriptedSearchThenAnswer drives the loop's control flow with a
// scripted policy: a search that really queries the index (local file and
// /retrieve over loopback HTTP give the same trajectory), the observation
// in Search-R1's format with Policy false, then an answer that ends it.
func TestScriptedSearchThenAnswer(t *testing.T) {
	f := setup(t)
	idx, err := bm25.Open(f.index)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpretrieve.NewHandler(idx, httpretrieve.ServerOptions{}))
	defer srv.Close()
	remote, err := httpretrieve.NewClient(srv.URL, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := idx.Search(context.Background(), []string{"plum fruit"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	observation := prompt.Observation(retrieval.FormatObservation(want[0]))
	lp := openLogprobs(t)
	var got []string
	for _, searcher := range []retrieval.Searcher{idx, remote} {
		tok, _ := tokenizer.Load(mustDefaultDir(t))
		// The first turn's last token, ">\n\n", runs past "</search>": the
		// loop must cut it as Search-R1 cuts the text.
		sc := &script{tok: tok, eos: 151645, state: map[int]*scriptRow{}, turns: []string{
			"<think> I need the fruit. </think>\n<search> plum fruit </search>\n\n",
			"<think> Found it. </think>\n<answer> a plum </answer>",
		}}
		var streamed strings.Builder
		a := newAgent(t, agent.Config{Searcher: searcher, TopK: 2, Force: sc.force,
			Stream: func(row int, b []byte) { streamed.Write(b) }})
		trs, err := a.Run(context.Background(), []agent.Question{{ID: "p", Question: "what is a plum"}}, 1, 3)
		if err != nil {
			t.Fatal(err)
		}
		tr := trs[0]
		wantResp := "<think> I need the fruit. </think>\n<search> plum fruit </search>" + observation +
			"<think> Found it. </think>\n<answer> a plum </answer>"
		if tr.Response != wantResp {
			t.Fatalf("response\n%q\nwant\n%q", tr.Response, wantResp)
		}
		if streamed.String() != wantResp {
			t.Errorf("streamed text\n%q\nwant the response", streamed.String())
		}
		if tr.Answer != "a plum" || tr.Stop != agent.StopAnswer || tr.Turns != 2 || fmt.Sprint(tr.Searches) != "[plum fruit]" {
			t.Errorf("answer %q stop %q turns %d searches %q", tr.Answer, tr.Stop, tr.Turns, tr.Searches)
		}
		// Policy is false exactly on the prompt, the cut tail and the
		// observation: the policy tokens decode to the two turns' text.
		var policyText, toolText []byte
		for i, p := range tr.Policy {
			if p {
				policyText = append(policyText, tok.TokenBytes(int(tr.Tokens[i+1]))...)
			}
			if tr.Roles[i] == 1 {
				toolText = append(toolText, tok.TokenBytes(int(tr.Tokens[i+1]))...)
			}
		}
		obsAt := strings.Index(tr.Response, "\n\n<information>")
		if pt := string(policyText); !strings.HasPrefix(pt, tr.Response[:obsAt-1]) || strings.Contains(pt, "<information>") {
			t.Errorf("policy tokens spell %q", pt)
		}
		// The tool positions are those that predict the query and its
		// closing tag (DESIGN.md §4).
		if string(toolText) != " plum fruit </search>" {
			t.Errorf("tool positions predict %q, want the query through </search>", toolText)
		}
		checkTrajectory(t, a, lp, tr)
		got = append(got, fmt.Sprint(tr.Tokens, tr.Roles, tr.LogProbs))
	}
	if got[0] != got[1] {
		t.Error("the local index and the /retrieve server gave different trajectories")
	}
}

func mustDefaultDir(t *testing.T) string {
	dir, err := tokenizer.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestErrors(t *testing.T) {
	f := setup(t)
	t.Run("prompt longer than the context", func(t *testing.T) {
		a := newAgent(t, agent.Config{MaxContext: 100})
		_, err := a.Run(context.Background(), []agent.Question{{ID: "long", Question: "why"}}, 1, 0)
		if !errors.Is(err, agent.ErrPromptTooLong) || !strings.Contains(err.Error(), "context is 100 tokens") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("context beyond the model's", func(t *testing.T) {
		// Past max_length an observation could take a row beyond the
		// model's context, and the next turn would fail for the batch.
		m, err := manifest.Read(f.model)
		if err != nil {
			t.Fatal(err)
		}
		if m.Model.MaxLength <= 0 {
			t.Fatal("the fixture's manifest has no max_length")
		}
		for _, c := range []struct {
			ctx  int
			want string
		}{
			{int(m.Model.MaxLength) + 1, fmt.Sprintf("exceeds the model's context: %s/manifest.json has max_length %d", f.model, m.Model.MaxLength)},
			{-1, "MaxContext -1 must be ≥ 0"},
		} {
			_, err := agent.New(agent.Config{Model: f.model, MaxContext: c.ctx})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("MaxContext %d: err = %v, want %q", c.ctx, err, c.want)
			}
		}
		a := newAgent(t, agent.Config{MaxContext: int(m.Model.MaxLength)})
		if a.MaxContext() != int(m.Model.MaxLength) {
			t.Errorf("MaxContext = max_length: the agent's context is %d", a.MaxContext())
		}
	})
	t.Run("unknown special token", func(t *testing.T) {
		dir := t.TempDir()
		for src, dst := range map[string]string{"tiny_bpe_vocab.json": "vocab.json", "tiny_bpe_merges.txt": "merges.txt"} {
			b, err := os.ReadFile(filepath.Join("../../models/tokenizer/testdata", src))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, dst), b, 0o644)
		}
		_, err := agent.New(agent.Config{Model: f.model, Tokenizer: dir})
		if !errors.Is(err, tokenizer.ErrUnknownSpecialToken) || !strings.Contains(err.Error(), "<|im_start|>") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing tokenizer files", func(t *testing.T) {
		_, err := agent.New(agent.Config{Model: f.model, Tokenizer: t.TempDir()})
		if !errors.Is(err, tokenizer.ErrMissingFiles) || !strings.Contains(err.Error(), "vocab.json") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("adapters of another model", func(t *testing.T) {
		_, err := agent.New(agent.Config{Model: f.model, Adapters: f.index})
		if err == nil || !strings.Contains(err.Error(), "adapters") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no model", func(t *testing.T) {
		_, err := agent.New(agent.Config{Model: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "manifest") {
			t.Fatalf("got %v", err)
		}
	})
}

// TestLongQueryIsCapped: a <search> of thousands of bytes (a degenerate
// policy) used to reach a /retrieve server whole, be refused with a 400
// and fail the batch; the loop sends at most MaxQueryBytes of it (cut at a
// UTF-8 boundary), so the rollout goes on, and keeps the query as written.
func TestLongQueryIsCapped(t *testing.T) {
	f := setup(t)
	idx, err := bm25.Open(f.index)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpretrieve.NewHandler(idx, httpretrieve.ServerOptions{MaxQueryBytes: agent.MaxQueryBytes + 8}))
	defer srv.Close()
	remote, err := httpretrieve.NewClient(srv.URL, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("plum fruit é ", 300) // 3,900 bytes, 2-byte runes among them
	tok, _ := tokenizer.Load(mustDefaultDir(t))
	sc := &script{tok: tok, eos: 151645, state: map[int]*scriptRow{}, turns: []string{
		"<search> " + long + "</search>\n\n", "<answer> a plum </answer>",
	}}
	a := newAgent(t, agent.Config{Searcher: remote, TopK: 2, Force: sc.force, MaxTurnTokens: 2048})
	trs, err := a.Run(context.Background(), []agent.Question{{ID: "p", Question: "what is a plum"}}, 1, 3)
	if err != nil {
		t.Fatalf("a long query failed the rollout: %v", err)
	}
	tr := trs[0]
	if tr.Answer != "a plum" || len(tr.Searches) != 1 || len(tr.Searches[0]) < 3000 {
		t.Fatalf("answer %q, searches of %v bytes: want the answer and the query as written", tr.Answer, len(tr.Searches))
	}
	if !strings.Contains(tr.Response, "<information>") {
		t.Error("no observation after the capped search")
	}
}
