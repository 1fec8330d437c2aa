// Package synth makes large deterministic passage corpora for benchmarks
// from the repository's fixture corpora (the HotpotQA paragraphs in
// data/demo and the FlashRAG wiki sample in retrieval/testdata): each
// synthetic passage takes a real title and 3 to 6 real sentences drawn from
// random paragraphs, so term statistics stay those of Wikipedia text while
// the corpus reaches any size.
//
// Invariant: the same sources, count and seed give byte-identical output.
package synth
