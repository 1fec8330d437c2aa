// Package run drives a benchmark evaluation (`dartc eval`, DESIGN.md §8):
// it loads the datasets, rolls every question out once through a Roller
// (the Search-R1 agent with greedy decoding, as Search-R1 evaluates),
// scores the answers and writes the per-question JSONL and the
// paper-shaped table.
//
// Output directory layout:
//
//	settings.json       what made the rows (AgentSettings) and the command
//	predictions.jsonl   one Record per question, appended batch by batch
//	table.md/.csv/.json EM, F1 and substring EM per dataset and their average
//
// Invariants:
//   - Nothing is written into a directory but a new or empty one or one
//     whose settings.json names the command (CheckDir): eval, leas and
//     gradangle resume their own reports and have no --force, so they
//     must not write into a folder of the user's or each other's.
//   - The settings include the --search index's sha256, so a report is not
//     resumed with an index rebuilt in place; a settings.json from before
//     that was recorded resumes with a warning (CheckSettings).
//   - A question is identified by its dataset and id (Key); a run appends
//     only questions whose key is not already in predictions.jsonl, so an
//     interrupted run resumes where it stopped and never scores a question
//     twice. A torn last line (a crash mid-write) is cut off on resume.
//   - Each batch's records are appended and fsynced before the next batch
//     starts; the table is recomputed from the whole file and written
//     atomically at the end.
//   - Records are scored by package qa from the agent's answer (the last
//     <answer> the policy wrote), so `dartc eval score` on the file gives
//     the same table.
package run
