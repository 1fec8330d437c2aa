// Package httpretrieve speaks Search-R1's retrieval protocol over HTTP: a
// server that puts any retrieval.Searcher behind POST /retrieve, and a client
// that implements retrieval.Searcher against such a server (dartc's own, or
// Search-R1's e5 + FAISS retrieval_server.py).
//
// The protocol (Search-R1 search_r1/search/retrieval_server.py):
//
//	request   {"queries": ["q1", ...], "topk": 3, "return_scores": true}
//	response  {"result": [[{"document": {"id": "0", "contents": "\"T\"\ntext"}, "score": 12.3}, ...], ...]}
//	          {"result": [[{"id": "0", "contents": "\"T\"\ntext"}, ...], ...]}   (return_scores false)
//
// Invariants:
//   - Requests are byte-for-byte what Search-R1's trainer sends (Python's
//     json.dumps defaults: ", " and ": " separators, non-ASCII as \uXXXX).
//   - Responses are byte-for-byte what FastAPI writes for the same result:
//     compact separators, non-ASCII text unescaped, floats in Python's repr
//     (1.0, 1e-05, 0.30000000000000004).
//   - "topk" missing or null means the server's default (3, as Search-R1);
//     Search-R1 also maps topk 0 to its default, dartc answers 400 for
//     topk ≤ 0 instead, and for topk above the server's maximum.
//   - Every bad request (malformed JSON, a missing or mistyped field, a body
//     over the size limit, a query over the length limit) gets status 400
//     and {"error": "..."}; the server keeps serving. Search failures get
//     500 with the same shape, and a request past the per-request timeout
//     503 (or a cut connection if its response had started).
//   - The limits are checked when the handler is made: negative ones, and a
//     default topk above the largest topk or the passage limit, are refused
//     (ServerOptions.Check).
//   - The client retries transport errors, 429 and 5xx a bounded number of
//     times with exponential backoff and jitter; it never retries 4xx. Each
//     attempt has its own timeout, and the caller's context bounds them all.
package httpretrieve
