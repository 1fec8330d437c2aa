// Package qa scores short answers the way Search-R1 and SQuAD do: answer
// extraction from an agent's response, answer normalization, exact match
// (EM), substring exact match and token F1.
//
// It is a leaf package (standard library only) shared by the GRPO reward
// and by evaluation, so that training and evaluation score answers with one
// definition.
//
// Invariants, matching Search-R1's qa_em.py and the SQuAD evaluation script:
//   - Normalize lower-cases (Unicode), removes ASCII punctuation only
//     (Python's string.punctuation; curly quotes and other Unicode
//     punctuation stay), replaces the whole words a, an, the by a space
//     (word boundaries are Unicode-aware, as in Python 3's re), and collapses
//     white space runs to one space with no leading or trailing space.
//   - ExtractAnswer takes the last non-overlapping <answer>…</answer> of a
//     response (the first </answer> after each <answer> closes it), trimmed
//     of white space; a response with no complete pair has no answer, which
//     scores 0 on every metric.
//   - EM and substring EM are 1 if any gold matches, F1 is the maximum over
//     golds; with no golds every metric is 0.
package qa
