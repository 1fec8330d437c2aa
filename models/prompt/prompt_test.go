package prompt

import (
	"os"
	"strings"
	"testing"
)

func TestChatML(t *testing.T) {
	cases := []struct {
		name string
		msgs []Message
		gen  bool
		want string
	}{
		{"default system", []Message{{"user", "Hi"}}, true,
			"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
		{"own system, no generation prompt", []Message{{"system", "Be brief."}, {"user", "Q"}, {"assistant", "A"}}, false,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"},
		{"empty", nil, false,
			"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"},
	}
	for _, c := range cases {
		if got := ChatML(c.msgs, c.gen); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestDefaultSystemMatchesTemplate checks DefaultSystem against the chat
// template in the project's tokenizer_config.json.
func TestDefaultSystemMatchesTemplate(t *testing.T) {
	raw, err := os.ReadFile("../../data/qwen2-tokenizer/tokenizer_config.json")
	if err != nil {
		t.Fatal(err)
	}
	want := `'<|im_start|>system\\n` + DefaultSystem + `<|im_end|>\\n'`
	if !strings.Contains(string(raw), want) {
		t.Fatalf("tokenizer_config.json's chat_template does not contain %s", want)
	}
}

func TestSearchR1User(t *testing.T) {
	const head = "Answer the given question. You must conduct reasoning inside <think> and </think> first every time you get new information. After reasoning, if you find you lack some knowledge, you can call a search engine by <search> query </search> and it will return the top searched results between <information> and </information>. You can search as many times as your want. If you find no further external knowledge needed, you can directly provide the answer inside <answer> and </answer>, without detailed illustrations. For example, <answer> Beijing </answer>. Question: "
	for q, want := range map[string]string{
		"who wrote hamlet":        head + "who wrote hamlet?\n",
		"  who wrote hamlet?\n\t": head + "who wrote hamlet?\n",
		"what is 2+2 ?":           head + "what is 2+2 ?\n",
		"\u00a0x\u001f":           head + "x?\n",
	} {
		if got := SearchR1User(q); got != want {
			t.Errorf("SearchR1User(%q):\n got %q\nwant %q", q, got, want)
		}
	}
}

// TestSearchR1ChatMatchesCase compares the rendered prompts with the
// prompts of the two rollouts in Search-R1's example/case.txt: the first
// was made with Qwen2's default system prompt, the second with Qwen2.5's.
func TestSearchR1ChatMatchesCase(t *testing.T) {
	raw, err := os.ReadFile("../tokenizer/testdata/case.txt")
	if err != nil {
		t.Fatal(err)
	}
	first, second, ok := strings.Cut(string(raw), "\n\n\n\n<|im_start|>")
	if !ok {
		t.Fatal("case.txt: no blank lines between the rollouts")
	}
	second = "<|im_start|>" + second
	for _, c := range []struct{ rollout, question, system string }{
		{first, "paul walkers cars in fast and furious list", Qwen2System},
		{second, "the heart muscle is stimulated to contract by electrical impulses which are generated where", ""},
	} {
		p := SearchR1Chat(c.question, c.system)
		if !strings.HasPrefix(c.rollout, p) {
			t.Errorf("prompt is not the rollout's prefix:\n got %q\nwant %q", p, c.rollout[:min(len(p), len(c.rollout))])
		}
		if rest := c.rollout[len(p):]; !strings.HasPrefix(rest, "<think>") {
			t.Errorf("rollout continues with %.20q after the prompt, want <think>", rest)
		}
	}
}

func TestObservation(t *testing.T) {
	refs := "Doc 1(Title: \"Paul Walker\") Paul William Walker IV was an actor.\nDoc 2(Title: \"Hamlet\") A play.\nSecond line.\n"
	want := "\n\n<information>Doc 1(Title: \"Paul Walker\") Paul William Walker IV was an actor.\nDoc 2(Title: \"Hamlet\") A play.\nSecond line.</information>\n\n"
	if got := Observation(refs); got != want {
		t.Errorf("Observation:\n got %q\nwant %q", got, want)
	}
	if got, want := Observation(""), "\n\n<information></information>\n\n"; got != want {
		t.Errorf("Observation(\"\") = %q, want %q", got, want)
	}
	// A title without text leaves "Doc 1(Title: T) \n", which strip() trims.
	if got, want := Observation("Doc 1(Title: T) \n"), "\n\n<information>Doc 1(Title: T)</information>\n\n"; got != want {
		t.Errorf("title only: got %q, want %q", got, want)
	}
}

func TestObservationInCase(t *testing.T) {
	raw, err := os.ReadFile("../tokenizer/testdata/case.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	// Rebuild the heart rollout's observation from its passage lines.
	start := strings.Index(text, "\n\n<information>Doc 1(Title: \"Cardiac pacemaker\")")
	end := strings.Index(text[start:], "</information>\n\n") + len("</information>\n\n")
	block := text[start : start+end]
	inner := strings.TrimSuffix(strings.TrimPrefix(block, "\n\n<information>"), "</information>\n\n")
	if n := strings.Count(inner, "Doc "); n != 3 {
		t.Fatalf("found %d passages, want 3", n)
	}
	if got := Observation(inner + "\n"); got != block {
		t.Errorf("Observation differs from case.txt:\n got %q\nwant %q", got, block)
	}
}

func TestInvalidAction(t *testing.T) {
	want := "\nMy previous action is invalid. If I want to search, I should put the query between <search> and </search>. If I want to give the final answer, I should put the answer between <answer> and </answer>. Let me try again.\n"
	if InvalidAction != want {
		t.Errorf("InvalidAction = %q", InvalidAction)
	}
	if len(StopStrings) != 2 || StopStrings[0] != "</search>" || StopStrings[1] != "</answer>" {
		t.Errorf("StopStrings = %q", StopStrings)
	}
}

func TestCutResponse(t *testing.T) {
	for _, c := range []struct{ in, cut, stop string }{
		{"<think>x</think><search> q </search> junk", "<think>x</think><search> q </search>", StopSearch},
		// </search> wins even after an earlier </answer>, as in Search-R1.
		{"<answer> a </answer> then <search> q </search>", "<answer> a </answer> then <search> q </search>", StopSearch},
		{"<answer> a </answer>\n\nmore", "<answer> a </answer>", StopAnswer},
		{"no tags", "no tags", ""},
	} {
		cut, stop := CutResponse(c.in)
		if cut != c.cut || stop != c.stop {
			t.Errorf("CutResponse(%q) = %q, %q; want %q, %q", c.in, cut, stop, c.cut, c.stop)
		}
	}
}

func TestParseAction(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Action
		ok   bool
	}{
		{"<think>x</think>\n<search> who wrote\nhamlet </search>", Action{"search", "who wrote\nhamlet"}, true},
		{"<answer> Paris </answer>", Action{"answer", "Paris"}, true},
		{"<search> a </answer> b </search>", Action{"search", "a </answer> b"}, true},
		{"<search> open only <answer> x </answer>", Action{"answer", "x"}, true},
		{"<search>no close", Action{}, false},
		{"plain text", Action{}, false},
	} {
		got, ok := ParseAction(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseAction(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
