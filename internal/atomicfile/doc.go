// Package atomicfile writes files so that readers see the old content or
// the new, never a mix: the bytes go to a temporary file in the target's
// folder, which is synced, then renamed over the target, and the folder is
// synced so that the rename itself survives a crash.
package atomicfile
