// Package runtest builds the fixture that the tests and benchmarks of the
// evaluation drivers (eval/run, eval/leasrun, eval/gradanglerun and their
// commands) share: a synthesized tiny Qwen2 with the real 151936-id
// vocabulary, compiled with all graphs, three trained-looking adapter
// files and a BM25 index of the bundled HotpotQA corpus (data/demo).
//
// Build it once per test binary with Get and remove it with Cleanup from
// TestMain. The model is random: its greedy text is gibberish, which is
// what the drivers' plumbing needs, not what a score means.
package runtest
