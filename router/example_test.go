package router_test

import (
	"fmt"

	"github.com/dartc/dartc/router"
)

type words []string

func (w words) TokenBytes(id int) []byte { return []byte(w[id]) }

// Roles of a turn that thinks, searches and stops: the positions from the
// one completing "<search>" to the one before the token completing
// "</search>" predict query tokens.
func ExampleRouter() {
	vocab := words{"<think>", "hmm", "</think>", "<", "search", ">", " capital", " of France", " </", "search", ">"}
	r := router.New(vocab, router.SearchR1)
	for id := range vocab {
		fmt.Printf("%-12q %v\n", vocab[id], r.Push(id, true))
	}
	// Output:
	// "<think>"    reason
	// "hmm"        reason
	// "</think>"   reason
	// "<"          reason
	// "search"     reason
	// ">"          tool
	// " capital"   tool
	// " of France" tool
	// " </"        tool
	// "search"     tool
	// ">"          reason
}
