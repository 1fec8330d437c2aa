package alloc

import "runtime"

// During returns the bytes the process allocated on the Go heap while fn
// ran (every goroutine's: a server in the same process counts too).
func During(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
