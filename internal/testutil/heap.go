package testutil

import "runtime"

// LiveHeap is the heap still reachable after two collections (the first
// may leave objects that finalizers or the sweeper release): what memory
// tests measure and bound. Heap figures under -race or -cover are not
// the exporter's; tests skip there.
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
