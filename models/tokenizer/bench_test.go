package tokenizer

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// benchText is case.txt repeated to about 1 MB: English prose with tags,
// quotes and line breaks, like the rollouts dartc tokenizes.
func benchText(b *testing.B) string {
	raw, err := os.ReadFile("testdata/case.txt")
	if err != nil {
		b.Fatal(err)
	}
	return strings.Repeat(string(raw), 1<<20/len(raw))
}

// BenchmarkEncode measures throughput with a warm piece cache, the steady
// state of a training run (run with -cpu 1 for one core).
func BenchmarkEncode(b *testing.B) {
	tok := qwen2(b)
	text := benchText(b)
	tok.Encode(text)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.Encode(text)
	}
}

// BenchmarkEncodeCold measures throughput with an empty piece cache.
func BenchmarkEncodeCold(b *testing.B) {
	tok := qwen2(b)
	text := benchText(b)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.cache = newPieceCache(cacheLimit)
		tok.Encode(text)
	}
}

// BenchmarkEncodeNoCache measures the pipeline with BPE run on every piece
// (a cache that keeps one entry), the worst case of text never seen before.
func BenchmarkEncodeNoCache(b *testing.B) {
	tok := qwen2(b)
	text := benchText(b)
	saved := tok.cache
	defer func() { tok.cache = saved }()
	tok.cache = newPieceCache(1)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.Encode(text)
	}
}

// BenchmarkEncodeMultilingual measures the hand-written texts of
// qwen2_reference.json (CJK, Arabic, Cyrillic, emoji, code, NFD input),
// without a cache.
func BenchmarkEncodeMultilingual(b *testing.B) {
	tok := qwen2(b)
	raw, err := os.ReadFile("testdata/qwen2_reference.json")
	if err != nil {
		b.Fatal(err)
	}
	var ref referenceFile
	if err := json.Unmarshal(raw, &ref); err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for sb.Len() < 1<<20 {
		for _, c := range ref.Cases[1:] {
			sb.WriteString(c.Text)
		}
	}
	text := sb.String()
	saved := tok.cache
	defer func() { tok.cache = saved }()
	tok.cache = newPieceCache(1)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.Encode(text)
	}
}

// BenchmarkDecode measures Decode throughput in bytes of text.
func BenchmarkDecode(b *testing.B) {
	tok := qwen2(b)
	text := benchText(b)
	ids := tok.Encode(text)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := tok.Decode(ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad measures loading the full Qwen2 tokenizer directory.
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load(qwen2Dir); err != nil {
			b.Fatal(err)
		}
	}
}
