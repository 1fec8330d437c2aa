// Package bm25 is an embedded, on-disk BM25 index: a streaming builder, a
// versioned single-file format with a checksum, and a searcher that many
// goroutines may query at once.
//
// Scoring is Lucene's BM25 (the form Pyserini uses, without the constant
// (k1+1) factor), with exact document lengths:
//
//	score(q, d) = Σ_{t ∈ q} qtf(t) · idf(t) · tf(t,d) / (tf(t,d) + k1·(1 − b + b·|d|/avgdl))
//	idf(t)      = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//
// where qtf counts repeats of t in the query (Lucene's boolean query sums one
// clause per repeat), N is the number of passages and avgdl the mean passage
// length in tokens. Defaults are Pyserini's k1 = 0.9, b = 0.4. The analyzer is
// Tokens: a Unicode word split and lower case, no stemming, no stop words.
//
// Invariants:
//   - Passages are numbered 0..N−1 in corpus order; a search returns only
//     passages that contain at least one query term, by descending score,
//     equal scores by ascending passage number, so ranking is deterministic.
//   - Per passage, term contributions are added in one fixed order of the
//     query's distinct terms (descending upper bound, then bytewise), so a
//     score is the same in every run, pruned or not.
//   - Search is exact: MaxScore pruning skips only passages whose best
//     possible score cannot reach the current k-th score, using per-term
//     upper bounds stored at build time and skip blocks of 128 postings.
//   - An Index is immutable after Open and safe for concurrent use; at most
//     GOMAXPROCS searches run at once, the others wait. Open reads the whole
//     file into memory, after checking its magic, version and trailer from
//     the first and last bytes (a corpus given by mistake costs no memory).
//   - A query is reduced to its distinct terms with their repeat counts
//     without allocating per token; Search checks its context between
//     queries and between the terms of a query.
//   - Open checks the magic, version, section table and checksum, and the
//     structure of every offset table and the term order; posting lists and
//     stored passages are bounds-checked when read. A damaged file gives an
//     error wrapping ErrCorrupt, never a panic.
//   - Build writes the file atomically: a temporary file in the target
//     directory, made 0644, fsynced, then renamed.
//
// File format, version 1, all integers little-endian:
//
//	header   "DARTBM25" | version u32 | header size u32 | k1 f64 | b f64 |
//	         N u64 | T u64 (terms) | total tokens u64 |
//	         10 × (offset u64, length u64) section table
//	sections doc lengths      u32 × N
//	         term offsets     u64 × (T+1) into term bytes
//	         term bytes       the terms, sorted bytewise, concatenated
//	         document freqs   u32 × T
//	         term bounds      f32 × T: max of tf/(tf + k1·(1 − b + b·|d|/avgdl))
//	                          over the term's postings, rounded up
//	         posting offsets  u64 × (T+1) into postings
//	         postings         per term: (uvarint doc delta, uvarint tf) × df,
//	                          the first delta from passage 0
//	         skips            per term, per block of 128 postings (the last
//	                          block may be short): last passage u32 | end of
//	                          the block in the term's postings u32
//	         doc offsets      u64 × (N+1) into doc bytes
//	         doc bytes        per passage: uvarint len(id) | id | contents
//	trailer  CRC-32C (Castagnoli) of everything before it, u32 | "BM25"
package bm25
