// Package leasrun drives a LEAS evaluation (DESIGN.md §8) on a compiled
// dual-adapter model: it builds the six configurations' adapter tensors
// with leas.Assemble, rolls out every question k times per configuration,
// counts correct rollouts and hands the counts to package leas.
package leasrun
