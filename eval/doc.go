// Package eval holds what evaluation needs apart from the model: benchmark
// loaders for the three formats the project meets and the results table
// shaped like the paper's.
//
// Loaders (Load picks one from the file): FlashRAG JSONL
// {id, question, golden_answers}, R1-Searcher JSONL {idx, question, answer}
// and Search-R1 / veRL parquet (id, question, golden_answers, data_source,
// reward_model.ground_truth.target). All give Example values.
//
// Invariants:
//   - Every Example has a non-empty Question and at least one gold answer;
//     a row without them, or with a JSON null for a gold answer, is an error
//     naming the file and line (or row) and the field.
//   - No gold answer normalizes to "" (qa.Normalize: only articles,
//     punctuation or spaces, as "The" or "."), since "" is a substring of
//     every prediction (SubEM 1 for any answer). Such golds are dropped with
//     one slog warning per file; a question left with none is left out; a
//     file left with no question is an error. Predictions files likewise.
//   - Example.Source is the dataset's short name: data_source when the file
//     has one, else derived from the file name by DatasetName.
//   - Table columns are datasets in the paper's order (NQ, TriviaQA, PopQA,
//     HotpotQA, 2Wiki, MuSiQue, Bamboogle), unknown ones after in first-seen
//     order; the average is the unweighted mean over the columns a row has,
//     as in the paper, not a mean over questions.
//   - Report files (Markdown, CSV, JSON) are written atomically.
//
// Answer scoring itself lives in package qa, shared with the GRPO reward.
package eval
