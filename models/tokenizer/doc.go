// Package tokenizer is the Qwen2 / Qwen2.5 byte-level BPE tokenizer.
//
// Encoding a text runs the same pipeline as the Hugging Face tokenizer.json
// of these models:
//
//  1. NFC normalization (golang.org/x/text/unicode/norm);
//  2. splitting into pieces by Qwen2SplitPattern, implemented by hand in
//     splitQwen2 (the tests compare it with regexp2 running the pattern);
//  3. byte-level BPE on each piece: its bytes start as single-byte tokens and
//     the pair ranked lowest in merges.txt is merged first, the leftmost
//     among equals, until no pair has a merge.
//
// Invariants:
//   - Decode(Encode(s)) == NFC(s) for every string s, including strings that
//     are not valid UTF-8: Decode concatenates raw token bytes and never
//     replaces them (Hugging Face's decoder writes U+FFFD for a character cut
//     between tokens; dartc keeps the bytes so text streamed token by token
//     joins up exactly).
//   - Encode never produces an added token's id: "<|im_end|>" written in text
//     is tokenized as characters. EncodeWithSpecial turns added tokens' texts
//     into their ids (leftmost, then longest) and runs the pipeline on the
//     text between them; added tokens are not normalized.
//   - A Tokenizer is immutable after Load except for its piece cache, which
//     is guarded by a lock; all methods are safe for concurrent use.
//
// Files: Load reads a directory with tokenizer.json, or vocab.json and
// merges.txt, plus tokenizer_config.json (added_tokens_decoder, eos_token)
// when present. DefaultDir finds the project's copy, data/qwen2-tokenizer.
package tokenizer
