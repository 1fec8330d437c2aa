package prompt

import (
	"regexp"
	"strings"
	"unicode"
)

// searchR1Instruction is Search-R1's user prompt up to the question
// (scripts/data_process/nq_search.py, make_prefix for template_type "base");
// its grammar, "as many times as your want", is Search-R1's.
const searchR1Instruction = "Answer the given question. You must conduct reasoning inside <think> and </think> first every time you get new information. After reasoning, if you find you lack some knowledge, you can call a search engine by <search> query </search> and it will return the top searched results between <information> and </information>. You can search as many times as your want. If you find no further external knowledge needed, you can directly provide the answer inside <answer> and </answer>, without detailed illustrations. For example, <answer> Beijing </answer>. Question: "

// Stop strings: a turn's generation ends at the first </search>, else at
// the first </answer>.
const (
	StopSearch = "</search>"
	StopAnswer = "</answer>"
)

// StopStrings are the strings that end a turn of generation.
var StopStrings = []string{StopSearch, StopAnswer}

// InvalidAction is the observation appended when a turn ends with neither a
// search nor an answer.
const InvalidAction = "\nMy previous action is invalid. If I want to search, I should put the query between <search> and </search>. If I want to give the final answer, I should put the answer between <answer> and </answer>. Let me try again.\n"

// SearchR1User returns Search-R1's user prompt for question: the question is
// stripped of surrounding whitespace (Python's str.strip) and gets a '?'
// when it does not end with one.
func SearchR1User(question string) string {
	q := strings.TrimFunc(question, pythonSpace)
	if !strings.HasSuffix(q, "?") {
		q += "?"
	}
	return searchR1Instruction + q + "\n"
}

// SearchR1Chat returns the whole prompt of a Search-R1 rollout: the ChatML
// conversation with the system message (DefaultSystem when system is empty)
// and SearchR1User(question), followed by the generation prompt.
func SearchR1Chat(question, system string) string {
	if system == "" {
		system = DefaultSystem
	}
	return ChatML([]Message{{RoleSystem, system}, {RoleUser, SearchR1User(question)}}, true)
}

// pythonSpace is Python's str.isspace for one character: Unicode whitespace
// plus the separators U+001C..U+001F.
func pythonSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// Observation returns the text appended after a search: the passages as
// Search-R1's _passages2string writes them (retrieval.FormatObservation),
// stripped of surrounding white space as Python's str.strip does, wrapped
// in <information> tags with the surrounding blank lines.
func Observation(passages string) string {
	return "\n\n<information>" + strings.TrimFunc(passages, pythonSpace) + "</information>\n\n"
}

// CutResponse cuts a turn's generated text as Search-R1 does: after the first
// </search> when there is one, else after the first </answer>, else not at
// all. stop is the stop string that cut it, or "".
func CutResponse(text string) (cut, stop string) {
	for _, s := range StopStrings {
		if i := strings.Index(text, s); i >= 0 {
			return text[:i+len(s)], s
		}
	}
	return text, ""
}

var actionOpen = regexp.MustCompile(`<(search|answer)>`)

// Action is what a turn asks for: a search with its query, or an answer.
type Action struct {
	Kind    string // "search" or "answer"
	Content string // stripped of surrounding whitespace
}

// ParseAction finds the first <search>…</search> or <answer>…</answer> in a
// turn's text (Search-R1's `<(search|answer)>(.*?)</\1>` with DOTALL). ok is
// false for an invalid action.
func ParseAction(text string) (a Action, ok bool) {
	// Go's regexp has no back-references: try each opening in order of
	// position and take the first whose own closing tag follows it.
	for from := 0; from < len(text); {
		loc := actionOpen.FindStringSubmatchIndex(text[from:])
		if loc == nil {
			return Action{}, false
		}
		kind := text[from+loc[2] : from+loc[3]]
		openEnd := from + loc[3] + 1
		if end := strings.Index(text[openEnd:], "</"+kind+">"); end >= 0 {
			return Action{Kind: kind, Content: strings.TrimFunc(text[openEnd:openEnd+end], pythonSpace)}, true
		}
		from += loc[0] + 1
	}
	return Action{}, false
}
