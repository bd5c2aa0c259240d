// Package fdlimit raises the process's limit on open files.
//
// Every probe in flight holds one socket, so the number of file
// descriptors the exporter needs grows with the number of targets that
// are probed at once (see docs/performance.md). Distributions start
// services with a soft RLIMIT_NOFILE of 1,024 for the sake of select(2),
// which Go does not use; the hard limit is what the administrator meant.
package fdlimit

// Limits are the soft and hard RLIMIT_NOFILE before and after Raise.
type Limits struct {
	SoftBefore, Soft, Hard uint64
}
