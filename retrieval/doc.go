// Package retrieval defines what the agent loop needs from a search engine:
// the Passage it gets back, the Searcher interface that both the local BM25
// index (retrieval/bm25) and the HTTP client of Search-R1's /retrieve protocol
// (retrieval/httpretrieve) implement, and the observation text that Search-R1
// shows the model.
//
// Invariants:
//   - Search returns exactly one result list per query, in query order; each
//     list holds at most topk passages, best first.
//   - A Passage's Contents is the corpus text as stored: the title on the first
//     line (Search-R1 corpora write it in double quotes), the body after it.
//   - FormatObservation reproduces Search-R1's _passages2string byte for byte:
//     the title keeps its quotes exactly as they appear in Contents.
package retrieval
