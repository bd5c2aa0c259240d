package capacity

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/cgroupfs"
)

// OOM kills of a backend: the kernel counts them per memory cgroup. On
// cgroup v2 the count is the oom_kill line of memory.events; on a host
// whose memory controller is still on cgroup v1 (hybrid hierarchies), it
// is the oom_kill line of memory.oom_control (Linux 4.13+). Both count
// the processes the OOM killer killed in the cgroup and its descendants.

// cgroupRef locates a memory cgroup's counter file.
type cgroupRef struct {
	// file is memory.events (v2) or memory.oom_control (v1); "" when the
	// process's memory cgroup is unknown.
	file string
}

// oomRef picks the OOM counter file of a process from its
// /proc/<pid>/cgroup (see cgroupfs.Mounts.Memory for which hierarchy).
func oomRef(m cgroupfs.Mounts, procCgroup []byte) cgroupRef {
	c, ok := m.Memory(procCgroup)
	switch {
	case !ok:
		return cgroupRef{}
	case c.V2:
		return cgroupRef{file: filepath.Join(c.Dir, "memory.events")}
	default:
		return cgroupRef{file: filepath.Join(c.Dir, "memory.oom_control")}
	}
}

var errNoOOMKill = errors.New("no oom_kill line")

// oomKills reads the oom_kill count of the cgroup.
func (c cgroupRef) oomKills() (uint64, error) {
	if c.file == "" {
		return 0, errors.New("memory cgroup unknown")
	}
	b, err := readBounded(c.file, 8<<10)
	if err != nil {
		return 0, err
	}
	return parseOOMKill(b)
}

// parseOOMKill reads "oom_kill N" from memory.events or
// memory.oom_control.
func parseOOMKill(b []byte) (uint64, error) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("oom_kill ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("oom_kill: %w", err)
			}
			return n, nil
		}
	}
	return 0, errNoOOMKill
}
