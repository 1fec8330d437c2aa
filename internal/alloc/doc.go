// Package alloc measures what a piece of code allocates on the Go heap,
// for tests that bound a server's or a reader's memory per request.
package alloc
