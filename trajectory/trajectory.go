package trajectory

import "fmt"

// Trajectory is one rollout: the prompt, then the response with the
// observations the tool inserted.
type Trajectory struct {
	// Question and Golden identify the example (Golden may be empty).
	ID       string   `json:"id,omitempty"`
	Question string   `json:"question"`
	Golden   []string `json:"golden_answers,omitempty"`

	// Tokens holds the prompt followed by the response.
	Tokens    []int64 `json:"tokens"`
	PromptLen int     `json:"prompt_len"`

	// Roles[t] is the role id (index into the manifest's roles) of
	// position t: the adapter that predicts Tokens[t+1].
	Roles []int64 `json:"roles"`
	// Policy[t] is true when Tokens[t+1] was sampled from the policy
	// (false for prompt and observation tokens): the loss mask.
	Policy []bool `json:"policy"`
	// LogProbs[t] is log π(Tokens[t+1]) under the sampling policy at
	// temperature 1 without truncation, where Policy[t]; 0 elsewhere.
	LogProbs []float64 `json:"logprobs"`

	// Response is the decoded response text (observations included).
	Response string `json:"response"`
	// Searches lists the queries sent to the search tool, in order.
	Searches []string `json:"searches,omitempty"`
	// Answer is the content of the last <answer>…</answer>, "" if none.
	Answer string `json:"answer"`
	// Stop says why the rollout ended: "answer", "eos", "max_turns",
	// "max_tokens" or "context".
	Stop  string `json:"stop"`
	Turns int    `json:"turns"`
}

// Check verifies the alignment invariants.
func (t *Trajectory) Check() error {
	n := len(t.Tokens)
	if t.PromptLen < 1 || t.PromptLen > n {
		return fmt.Errorf("trajectory: prompt length %d of %d tokens", t.PromptLen, n)
	}
	if len(t.Roles) != n || len(t.Policy) != n || len(t.LogProbs) != n {
		return fmt.Errorf("trajectory: %d tokens but %d roles, %d policy flags, %d log-probs",
			n, len(t.Roles), len(t.Policy), len(t.LogProbs))
	}
	for i := 0; i < t.PromptLen-1; i++ {
		if t.Policy[i] {
			return fmt.Errorf("trajectory: position %d predicts a prompt token but is marked policy", i)
		}
	}
	if n > 0 && (t.Policy[n-1] || t.LogProbs[n-1] != 0) {
		return fmt.Errorf("trajectory: the last position predicts nothing")
	}
	return nil
}

// ResponseTokens counts the tokens after the prompt.
func (t *Trajectory) ResponseTokens() int { return len(t.Tokens) - t.PromptLen }

// PolicyTokens counts the sampled tokens.
func (t *Trajectory) PolicyTokens() int {
	n := 0
	for _, p := range t.Policy {
		if p {
			n++
		}
	}
	return n
}
