// Package corpus reads passage corpora in the JSONL forms FlashRAG and
// Search-R1 use, one JSON object per line:
//
//	flashrag:   {"id": "0", "contents": "\"Title\"\ntext"}
//	title-text: {"title": "Title", "text": "text"}
//
// Invariants:
//   - Rows come out in file order; Row.Line is the 1-based line number.
//   - title-text rows get id = their 0-based row number and contents =
//     "\"" + title + "\"\n" + text, which is how FlashRAG builds the first form
//     from the second.
//   - A flashrag id may be a JSON string or number; it is kept as its text.
//   - Blank lines are skipped; any other malformed line is an error naming
//     the line, never a silently dropped row.
package corpus
