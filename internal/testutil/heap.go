package testutil

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

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

// SettledLiveHeap is the least of samples LiveHeap readings taken gap
// apart: the heap a running exporter keeps, without the transient
// buffers of whatever happened to be in flight at one reading (a
// capacity refresh's netlink dump, a probe round), which a single reading
// counts as live one run in five.
func SettledLiveHeap(samples int, gap time.Duration) uint64 {
	least := LiveHeap()
	for range samples - 1 {
		time.Sleep(gap)
		least = min(least, LiveHeap())
	}
	return least
}

// MemProfileEnv names the file a memory test writes a heap profile of
// its live set to (go tool pprof -top -inuse_space FILE).
const MemProfileEnv = "MEMPROFILE"

// WriteHeapProfile writes the heap profile to $MEMPROFILE when it is set.
func WriteHeapProfile(tb testing.TB) {
	tb.Helper()
	p := os.Getenv(MemProfileEnv)
	if p == "" {
		return
	}
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// SkipUnlessHeapIsTheExporters skips a heap measurement where the figure
// would not be the exporter's: under -race (shadow memory and
// bookkeeping), -cover (counters) and -short. `make alloc-budgets` runs
// these tests without them.
func SkipUnlessHeapIsTheExporters(tb testing.TB) {
	tb.Helper()
	switch {
	case testing.Short():
		tb.Skip("heap measurement: not with -short")
	case RaceEnabled:
		tb.Skip("heap measurement: the race detector distorts the heap (make alloc-budgets runs it without -race)")
	case testing.CoverMode() != "":
		tb.Skip("heap measurement: coverage counters distort the heap")
	}
}
