// Package plotpng draws the project's figures — line curves (training
// metrics over steps) and histograms (LEAS coefficients, gradient angles) —
// to PNG files with gonum.org/v1/plot.
//
// Invariants:
//   - Files are written atomically (temporary file in the same directory,
//     fsync, rename): a reader never sees a half-written PNG.
//   - Several histogram series share one set of bins (Bin), so that their
//     bars line up and compare; the bins are half-open [lo, hi) except the
//     last, which includes hi. Values outside [lo, hi] and NaNs are dropped
//     and counted, never silently moved into an edge bin.
//   - Input is validated before drawing (equal X/Y lengths, finite ranges,
//     at least one bin); bad input is an error, not a panic inside gonum.
package plotpng
