//go:build unix

package fdlimit

import (
	"os"
	"syscall"
	"testing"
)

// TestRaiseLiftsSoftToHard lowers the soft limit, as a service manager
// would, and checks that Raise brings it back to the hard limit and that
// files can then be opened beyond the lowered limit.
func TestRaiseLiftsSoftToHard(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max < 256 {
		t.Skipf("hard limit %d too low to test", orig.Max)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
	low := syscall.Rlimit{Cur: 64, Max: orig.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}

	l, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	if l.SoftBefore != 64 || l.Soft != uint64(orig.Max) || l.Hard != uint64(orig.Max) {
		t.Errorf("Raise() = %+v, want soft 64 -> %d, hard %d", l, orig.Max, orig.Max)
	}
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if now.Cur != orig.Max {
		t.Errorf("soft limit after Raise: %d, want %d", now.Cur, orig.Max)
	}
	// 100 more files than the lowered limit allowed.
	var files []*os.File
	t.Cleanup(func() {
		for _, f := range files {
			f.Close()
		}
	})
	for range 164 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatalf("after %d files: %v", len(files), err)
		}
		files = append(files, f)
	}

	// Already at the hard limit: nothing to do, no error.
	l, err = Raise()
	if err != nil || l.SoftBefore != l.Hard || l.Soft != l.Hard {
		t.Errorf("second Raise() = %+v, %v", l, err)
	}
}
