// Package allocs holds a benchmark whose allocations are known exactly,
// for the budgets command's own test.
package allocs

import "testing"

var sink []byte

// BenchmarkKilobyte allocates one 1,024-byte slice per iteration.
func BenchmarkKilobyte(b *testing.B) {
	b.Run("one", func(b *testing.B) {
		for b.Loop() {
			sink = make([]byte, 1024)
		}
	})
}
