// Package leas attributes an agent's per-question success to its reasoning
// and tool-use adapters and to their interaction (LEAS, DESIGN.md §8).
//
// Six configurations M are evaluated on every question q with k samples
// each. Configuration M switches on the terms of
// x_M ∈ {0,1}^6 over [base, tool, reason, base×tool, base×reason,
// tool×reason]:
//
//	M_Base    [1,0,0,0,0,0]   no adapter
//	M_Reas    [1,0,1,0,1,0]   adapter trained on reasoning tokens, on every token
//	M_Tool    [1,1,0,1,0,0]   adapter trained on tool tokens, on every token
//	M_Unified [1,1,1,1,1,1]   adapter trained on all tokens
//	H_Tool    [1,1,0,0,0,0]   base on reasoning positions, M_Tool on tool positions
//	H_Reas    [1,0,1,0,0,0]   M_Reas on reasoning positions, base on tool positions
//
// With the smoothed accuracy s_M^q = (c + α)/(k + 2α) (α > 0 keeps it away
// from 0 and 1, so its logit is finite) the model is
// s_M^q = σ(x_Mᵀ λ^q). The six rows of X are linearly independent, so λ^q
// is the exact solution of X λ^q = logit(s^q). λ^q_23 — the tool×reason
// coefficient, index Interaction — below zero means the two skills
// interfere on q: training both into one adapter does worse than their
// separate effects predict.
//
// Invariants: Solve never divides by a pivot below 1e-12 (X is fixed and
// well conditioned; a failure means a broken table); counts outside [0, k]
// are an error naming the question; results keep the input order.
package leas
