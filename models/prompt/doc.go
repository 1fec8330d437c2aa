// Package prompt renders the strings dartc feeds a Qwen2.5 model: ChatML
// conversations as the Qwen2.5 chat template writes them, and Search-R1's
// user prompt, observation, invalid-action message and stop strings, byte
// for byte as Search-R1 writes them (so that results compare with its
// table).
//
// Invariants:
//   - ChatML output equals what tokenizer_config.json's chat_template renders
//     for conversations without tools: a default system message
//     (DefaultSystem) is put first when the conversation has none, and every
//     message is "<|im_start|>ROLE\nCONTENT<|im_end|>\n".
//   - The strings hold added tokens' texts (<|im_start|>, <|im_end|>), so
//     they are tokenized with tokenizer.EncodeWithSpecial; the content of a
//     message is never altered.
package prompt
