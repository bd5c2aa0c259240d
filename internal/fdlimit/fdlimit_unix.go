//go:build unix

package fdlimit

import (
	"fmt"
	"syscall"
)

// Raise sets the soft RLIMIT_NOFILE to the hard limit and reports both.
// Go's os package already does this at start-up since Go 1.19; doing it
// here makes the values visible in the log and keeps the exporter correct
// whatever the runtime does.
func Raise() (Limits, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return Limits{}, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	l := Limits{SoftBefore: uint64(rl.Cur), Soft: uint64(rl.Cur), Hard: uint64(rl.Max)}
	if rl.Cur >= rl.Max {
		return l, nil
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return l, fmt.Errorf("raising soft RLIMIT_NOFILE from %d to %d: %w", l.SoftBefore, l.Hard, err)
	}
	l.Soft = l.Hard
	return l, nil
}
