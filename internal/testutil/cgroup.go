package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/cgroupfs"
)

var cgroupSeq atomic.Int64

// MemoryCgroup creates a memory cgroup limited to limit bytes (and no
// swap), removed when the test ends, and returns its directory and its
// cgroup.procs file: writing a PID there moves that process in. It uses
// cgroup v2 when the v2 hierarchy has the memory controller, else the v1
// memory controller, and skips the test without root or either.
func MemoryCgroup(tb testing.TB, limit int64) (dir, procs string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("creating a memory cgroup needs root (or a delegated cgroup v2 subtree)")
	}
	m, err := cgroupfs.ReadMounts("/proc/self/mountinfo")
	if err != nil {
		tb.Skipf("cannot read mountinfo: %v", err)
	}
	name := fmt.Sprintf("nue-test-%d-%d", os.Getpid(), cgroupSeq.Add(1))
	if m.V2.Dir != "" {
		d := filepath.Join(m.V2.Dir, name)
		if err := os.Mkdir(d, 0o755); err == nil {
			tb.Cleanup(func() { os.Remove(d) })
			if err := os.WriteFile(filepath.Join(d, "memory.max"), []byte(strconv.FormatInt(limit, 10)), 0o644); err == nil {
				os.WriteFile(filepath.Join(d, "memory.swap.max"), []byte("0"), 0o644)
				return d, filepath.Join(d, "cgroup.procs")
			}
		}
	}
	if m.V1Memory.Dir == "" {
		tb.Skip("no memory controller: neither cgroup v2 with memory nor cgroup v1 memory is mounted")
	}
	d := filepath.Join(m.V1Memory.Dir, name)
	if err := os.Mkdir(d, 0o755); err != nil {
		tb.Skipf("cannot create a v1 memory cgroup: %v", err)
	}
	tb.Cleanup(func() { os.Remove(d) })
	if err := os.WriteFile(filepath.Join(d, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		tb.Fatal(err)
	}
	// Without swap accounting the limit could be met by swapping.
	os.WriteFile(filepath.Join(d, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644)
	return d, filepath.Join(d, "cgroup.procs")
}
