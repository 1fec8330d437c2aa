// Package outpath decides whether a command may write its output where the
// user asked. The rule (every command that takes --force follows it):
//
//   - a path that does not exist is written;
//   - an existing one is refused without --force;
//   - with --force, it is replaced only when it is what that command writes
//     (a dartc artifacts directory, a synthesized model directory, a BM25
//     index file) or an empty directory, and never when it holds the
//     command's own input (the source model, the corpus).
//
// So --force never deletes a file dartc did not create. Commands that
// resume instead (eval, leas, gradangle: Own) write only into a new or
// empty directory or one they wrote themselves, whatever its state.
package outpath
