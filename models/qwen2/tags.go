package qwen2

// Search-R1's tag strings, byte for byte. The model writes a query between
// SearchOpen and SearchClose; the environment answers between InfoOpen and
// InfoClose; the final answer sits between AnswerOpen and AnswerClose.
const (
	SearchOpen  = "<search>"
	SearchClose = "</search>"
	InfoOpen    = "<information>"
	InfoClose   = "</information>"
	AnswerOpen  = "<answer>"
	AnswerClose = "</answer>"
	ThinkOpen   = "<think>"
	ThinkClose  = "</think>"
)

// Tags lists every tag string in open/close pairs.
func Tags() []string {
	return []string{SearchOpen, SearchClose, InfoOpen, InfoClose, AnswerOpen, AnswerClose, ThinkOpen, ThinkClose}
}

// Qwen2 chat-template special tokens.
const (
	IMStart   = "<|im_start|>"
	IMEnd     = "<|im_end|>"
	EndOfText = "<|endoftext|>"
)
