// Package router assigns every token position of a rollout a role, the
// LoRA adapter that computes it: reason (0) or tool (1) (DESIGN.md §4).
//
// The adapter at position t is the one that owns the token predicted at t,
// the token at t+1. With Search-R1's tags the tokens of a query — from the
// one after the token that completes "<search>" through the token that
// completes "</search>" — are tool tokens, so the positions that predict
// them get role tool and every other position gets role reason.
//
// At position t the next token is not yet known, so the role is a function
// of the tokens up to t only: role(t) is tool exactly when, in the text of the
// generated tokens up to and including t, a "<search>" has been completed and
// the "</search>" that follows it has not. Tags are several BPE tokens and
// tokens may straddle a tag's edge; the rule for that is byte-exact:
//
//   - The token that holds the last byte of "<search>" is a tag token even
//     when it carries more bytes (">\n" or "> who"): its position is tool,
//     the position before it (which predicts it) is reason.
//   - The token that holds the last byte of "</search>" is a query token even
//     when it carries more (">\n\n" or "><"): the position before it is tool,
//     its own position is reason.
//   - A token that holds a tag's first bytes only (" <search", "</") changes
//     nothing until the tag is completed.
//
// Only generated tokens are scanned. Prompt and observation tokens (those
// the environment inserts, loss weight 0) are reason, and each one resets the
// scan: a search never spans inserted text, and tags written in a prompt
// (Search-R1's instructions quote "<search> query </search>") or in a
// retrieved passage never change a role. Consequently the last generated
// token of a turn cut inside an open search is tool, as generation saw it.
//
// Router computes roles one token at a time during generation; Roles
// computes them for a finished sequence by a separate method (search over the
// decoded text of each generated run). Both are deterministic functions of
// (token ids, which tokens were generated); the tests check they agree on
// every position of many sampled sequences, so roles used while sampling
// are the roles used in training.
package router
