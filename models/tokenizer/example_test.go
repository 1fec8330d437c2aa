package tokenizer_test

import (
	"fmt"

	"github.com/dartc/dartc/models/tokenizer"
)

// Encode reads added tokens' texts as characters; EncodeWithSpecial turns
// them into their ids. (The plain ids are those Hugging Face tokenizers gives
// for this vocabulary without added tokens.)
func Example() {
	tok, err := tokenizer.Load("../../data/qwen2-tokenizer")
	if err != nil {
		fmt.Println(err)
		return
	}
	plain := tok.Encode("<|im_end|> Hello world!")
	special := tok.EncodeWithSpecial("<|im_end|> Hello world!")
	text, _ := tok.Decode(special)
	eos, _ := tok.SpecialID("<|im_end|>")
	fmt.Println(plain)
	fmt.Println(special)
	fmt.Printf("%q %d %v\n", text, eos, tok.EOSIDs())
	// Output:
	// [27 91 318 6213 91 29 21927 1879 0]
	// [151645 21927 1879 0]
	// "<|im_end|> Hello world!" 151645 [151645 151643]
}
