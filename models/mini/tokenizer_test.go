package mini

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dartc/dartc/models/prompt"
	"github.com/dartc/dartc/models/tokenizer"
	"github.com/dartc/dartc/router"
)

const modelDir = "model"

func loadTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The mini tokenizer.json (trained by tokenizers, not Qwen2's) encodes as
// Hugging Face encodes it: tokenizer-reference.json holds HF's ids for the
// segments of training trajectories and for strings that stress the
// pre-tokenizer, special tokens included.
func TestTokenizerMatchesHuggingFace(t *testing.T) {
	tok := loadTokenizer(t)
	raw, err := os.ReadFile(filepath.Join(modelDir, "tokenizer-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 20 {
		t.Fatalf("%d reference cases, want ≥ 20", len(ref.Cases))
	}
	for i, c := range ref.Cases {
		got := tok.EncodeWithSpecial(c.Text)
		if !slices.Equal(got, c.IDs) && !(len(got) == 0 && len(c.IDs) == 0) {
			t.Errorf("case %d %.60q:\n got %v\nwant %v", i, c.Text, got, c.IDs)
		}
	}
}

// The ChatML markers and <|endoftext|> are single added tokens after the
// learned vocabulary, <|im_end|> is the EOS, and Search-R1's tags are plain
// text (so the agent sees them when it decodes without special tokens).
func TestTokenizerSpecialTokens(t *testing.T) {
	tok := loadTokenizer(t)
	ids := map[string]int{}
	for _, name := range []string{"<|endoftext|>", prompt.IMStart, prompt.IMEnd} {
		id, err := tok.SpecialID(name)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
		if got := tok.EncodeWithSpecial(name); !slices.Equal(got, []int{id}) {
			t.Errorf("EncodeWithSpecial(%q) = %v, want [%d]", name, got, id)
		}
		if got := tok.Encode(name); len(got) < 2 {
			t.Errorf("Encode(%q) = %v: plain text must not produce the added token", name, got)
		}
	}
	if eos := tok.EOSIDs(); len(eos) == 0 || eos[0] != ids[prompt.IMEnd] {
		t.Errorf("EOS ids %v, want <|im_end|> (%d) first", eos, ids[prompt.IMEnd])
	}
	added := tok.AddedTokens()
	if len(added) != 3 {
		t.Errorf("added tokens %v, want the three ChatML ones", added)
	}
	for _, tag := range []string{"<search>", "</search>", "<answer>", "</answer>", "<information>", "</information>", "<think>", "</think>"} {
		for _, id := range tok.Encode(tag) {
			if _, ok := added[id]; ok {
				t.Errorf("tag %s encodes to added token %d", tag, id)
			}
		}
		if got, _ := tok.Decode(tok.Encode(tag)); got != tag {
			t.Errorf("Decode(Encode(%q)) = %q", tag, got)
		}
	}
}

// With the mini tokenizer's pieces (the tags are several tokens here), the
// router gives the tool role to exactly the positions that predict the
// query and its closing tag.
func TestRouterOnMiniTokens(t *testing.T) {
	tok := loadTokenizer(t)
	turn := "<think> I need to search Domthaim Rasteis. </think>\n<search> Domthaim Rasteis </search>"
	ids := tok.Encode(turn)
	gen := make([]bool, len(ids))
	for i := range gen {
		gen[i] = true
	}
	roles := router.Roles(tok, ids, gen, router.SearchR1)
	var tool strings.Builder
	for t := 0; t+1 < len(ids); t++ {
		if roles[t] == router.Tool {
			tool.Write(tok.TokenBytes(ids[t+1]))
		}
	}
	// The token completing "<search>" may carry the space after it.
	got := strings.TrimPrefix(tool.String(), " ")
	if want := "Domthaim Rasteis </search>"; got != want {
		t.Errorf("text predicted at tool positions %q, want %q (tokens %v)", tool.String(), want, ids)
	}
}
