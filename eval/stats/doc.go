// Package stats holds the few descriptive statistics the analysis packages
// report: a distribution summary and Pearson correlation.
//
// Invariants: inputs are never modified; empty or constant inputs give NaN
// where a statistic is undefined, never a panic or a division by zero.
package stats
