package capacity

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// cgroupMounts are where the hierarchies are mounted, from mountinfo.
type cgroupMounts struct {
	v2       string // the cgroup2 mount point, "" when none
	v1Memory string // the cgroup v1 memory controller's mount point
}

// readCgroupMounts finds the cgroup mounts in a mountinfo file.
func readCgroupMounts(path string) (cgroupMounts, error) {
	var m cgroupMounts
	b, err := readBounded(path, 1<<20)
	if err != nil {
		return m, err
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		// 36 35 98:0 /root /mnt rw,noatime master:1 - cgroup2 cgroup2 rw
		pre, post, ok := bytes.Cut(line, []byte(" - "))
		if !ok {
			continue
		}
		pf, qf := bytes.Fields(pre), bytes.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mnt := unescapeMount(string(pf[4]))
		switch string(qf[0]) {
		case "cgroup2":
			if m.v2 == "" {
				m.v2 = mnt
			}
		case "cgroup":
			for opt := range bytes.SplitSeq(qf[2], []byte(",")) {
				if string(opt) == "memory" && m.v1Memory == "" {
					m.v1Memory = mnt
				}
			}
		}
	}
	return m, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !bytes.ContainsRune([]byte(s), '\\') {
		return s
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b = append(b, byte(v))
				i += 3
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// memoryCgroup picks the counter file of a process from its
// /proc/<pid>/cgroup: the v2 memory.events when the v2 hierarchy has the
// memory controller there, else the v1 memory controller's
// memory.oom_control.
func (m cgroupMounts) memoryCgroup(procCgroup []byte) cgroupRef {
	var v1 string
	for line := range bytes.SplitSeq(procCgroup, []byte("\n")) {
		// hierarchy-ID:controller-list:cgroup-path
		parts := bytes.SplitN(line, []byte(":"), 3)
		if len(parts) != 3 {
			continue
		}
		path := string(parts[2])
		switch {
		case string(parts[0]) == "0" && len(parts[1]) == 0 && m.v2 != "":
			f := filepath.Join(m.v2, filepath.Clean("/"+path), "memory.events")
			if _, err := os.Stat(f); err == nil {
				return cgroupRef{file: f}
			}
		case m.v1Memory != "":
			for c := range bytes.SplitSeq(parts[1], []byte(",")) {
				if string(c) == "memory" {
					v1 = filepath.Join(m.v1Memory, filepath.Clean("/"+path), "memory.oom_control")
				}
			}
		}
	}
	return cgroupRef{file: v1}
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
