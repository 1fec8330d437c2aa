package prompt

import "strings"

// ChatML markers of Qwen2 / Qwen2.5.
const (
	IMStart = "<|im_start|>"
	IMEnd   = "<|im_end|>"
)

// Roles of ChatML messages.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// DefaultSystem is the system prompt the Qwen2.5 chat template adds when a
// conversation has none.
const DefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

// Qwen2System is the default system prompt of the Qwen2 (not 2.5) template;
// the first rollout of Search-R1's example/case.txt was made with it.
const Qwen2System = "You are a helpful assistant."

// GenerationPrompt opens the assistant's turn for the model to write.
const GenerationPrompt = IMStart + RoleAssistant + "\n"

// Message is one turn of a conversation.
type Message struct {
	Role    string
	Content string
}

// ChatML renders msgs as the Qwen2.5 chat template does without tools,
// putting a DefaultSystem message first when msgs does not start with a
// system message, and appending GenerationPrompt when addGenerationPrompt.
func ChatML(msgs []Message, addGenerationPrompt bool) string {
	var b strings.Builder
	if len(msgs) == 0 || msgs[0].Role != RoleSystem {
		writeTurn(&b, RoleSystem, DefaultSystem)
	}
	for _, m := range msgs {
		writeTurn(&b, m.Role, m.Content)
	}
	if addGenerationPrompt {
		b.WriteString(GenerationPrompt)
	}
	return b.String()
}

func writeTurn(b *strings.Builder, role, content string) {
	b.WriteString(IMStart)
	b.WriteString(role)
	b.WriteByte('\n')
	b.WriteString(content)
	b.WriteString(IMEnd)
	b.WriteByte('\n')
}
