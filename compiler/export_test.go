package compiler

import "slices"

// WithoutPass drops the named pass from every pipeline until restore is
// called, for benchmarks that compare a graph with and without it.
func WithoutPass(name string) (restore func()) {
	saved := map[string][]string{}
	for g, pl := range pipelines {
		saved[g] = pl
		pipelines[g] = slices.DeleteFunc(slices.Clone(pl), func(p string) bool { return p == name })
	}
	return func() {
		for g, pl := range saved {
			pipelines[g] = pl
		}
	}
}

// WithRepeatedKV compiles the attention blocks over the exporter's repeated
// keys and values instead of grouped queries until restore is called.
func WithRepeatedKV() (restore func()) {
	saved := repeatedKV
	repeatedKV = true
	return func() { repeatedKV = saved }
}
