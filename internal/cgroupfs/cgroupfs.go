// Package cgroupfs locates a process's memory cgroup through /proc and
// reads from it: the memory limit the exporter runs under (to size its
// soft memory limit) and the OOM-kill counters of backends.
package cgroupfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxFile bounds every read: mountinfo of a host with thousands of
// mounts is a few hundred KB; the cgroup files read here are a few lines.
const maxFile = 1 << 20

// Mount is where one hierarchy is mounted: Dir in this mount namespace
// shows the cgroup Root (usually "/", a container's own cgroup inside a
// container without a cgroup namespace).
type Mount struct {
	Dir  string
	Root string
}

// Mounts are the mounts of the memory controller, from mountinfo.
type Mounts struct {
	V2       Mount // the cgroup2 mount; Dir "" when none
	V1Memory Mount // the cgroup v1 memory controller's mount; Dir "" when none
}

// ReadMounts finds the cgroup mounts in a mountinfo file
// (/proc/self/mountinfo, or /proc/PID/mountinfo).
func ReadMounts(path string) (Mounts, error) {
	b, err := ReadBounded(path, maxFile)
	if err != nil {
		return Mounts{}, err
	}
	return parseMounts(b), nil
}

func parseMounts(b []byte) Mounts {
	var m Mounts
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
		mnt := Mount{Dir: unescape(string(pf[4])), Root: unescape(string(pf[3]))}
		switch string(qf[0]) {
		case "cgroup2":
			if m.V2.Dir == "" {
				m.V2 = mnt
			}
		case "cgroup":
			for opt := range bytes.SplitSeq(qf[2], []byte(",")) {
				if string(opt) == "memory" && m.V1Memory.Dir == "" {
					m.V1Memory = mnt
				}
			}
		}
	}
	return m
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.ContainsRune(s, '\\') {
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

// Memory is a process's memory cgroup as a directory of this mount
// namespace.
type Memory struct {
	Dir string
	V2  bool
	// Top is the mount's directory: limits of the ancestors of Dir up to
	// Top also apply to the process.
	Top string
}

// Memory picks the memory cgroup of a process from its /proc/PID/cgroup:
// the v2 hierarchy when it has a memory controller at that path, else the
// v1 memory controller. ok is false when neither is mounted here.
func (m Mounts) Memory(procCgroup []byte) (Memory, bool) {
	var v1 Memory
	var haveV1 bool
	for line := range bytes.SplitSeq(procCgroup, []byte("\n")) {
		// hierarchy-ID:controller-list:cgroup-path
		parts := bytes.SplitN(line, []byte(":"), 3)
		if len(parts) != 3 {
			continue
		}
		path := string(parts[2])
		switch {
		case string(parts[0]) == "0" && len(parts[1]) == 0 && m.V2.Dir != "":
			dir := m.V2.dir(path)
			if _, err := os.Stat(filepath.Join(dir, "memory.events")); err == nil {
				return Memory{Dir: dir, V2: true, Top: m.V2.Dir}, true
			}
		case m.V1Memory.Dir != "":
			for c := range bytes.SplitSeq(parts[1], []byte(",")) {
				if string(c) == "memory" {
					v1, haveV1 = Memory{Dir: m.V1Memory.dir(path), Top: m.V1Memory.Dir}, true
				}
			}
		}
	}
	return v1, haveV1
}

// dir maps a cgroup path of /proc/PID/cgroup to a directory under the
// mount: inside a container without a cgroup namespace the path is the
// host's (/docker/ID) while the mount shows only the container's own
// cgroup (root /docker/ID).
func (mt Mount) dir(path string) string {
	path = filepath.Clean("/" + path)
	if root := filepath.Clean("/" + mt.Root); root != "/" {
		if rel, ok := strings.CutPrefix(path, root); ok && (rel == "" || rel[0] == '/') {
			path = "/" + rel
		}
	}
	return filepath.Join(mt.Dir, path)
}

// ErrNoLimit says the cgroup and its ancestors set no memory limit.
var ErrNoLimit = errors.New("no memory limit")

// Limit returns the tightest memory limit on the cgroup and its ancestors
// within the mount: a parent's limit binds its children too.
func (c Memory) Limit() (int64, error) {
	file := "memory.limit_in_bytes"
	if c.V2 {
		file = "memory.max"
	}
	limit, found := int64(math.MaxInt64), false
	dir := c.Dir
	for {
		b, err := ReadBounded(filepath.Join(dir, file), 4096)
		switch {
		case err == nil:
			v, perr := parseLimit(b)
			if perr != nil {
				return 0, fmt.Errorf("%s: %w", filepath.Join(dir, file), perr)
			}
			if v > 0 && v < limit {
				limit, found = v, true
			}
		case !errors.Is(err, os.ErrNotExist):
			return 0, err
		}
		if dir == c.Top || dir == "/" || dir == "." || !strings.HasPrefix(dir, c.Top) {
			break
		}
		dir = filepath.Dir(dir)
	}
	if !found {
		return 0, ErrNoLimit
	}
	return limit, nil
}

// parseLimit reads memory.max ("max" or bytes) or memory.limit_in_bytes
// (bytes; about 2^63 rounded to the page size when unlimited).
func parseLimit(b []byte) (int64, error) {
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory limit %q: %w", s, err)
	}
	// cgroup v1 writes "unlimited" as LONG_MAX rounded down to the page
	// size; anything beyond 2^62 is no limit any machine has.
	if v >= 1<<62 {
		return 0, nil
	}
	return int64(v), nil
}

// Self returns the memory cgroup of the calling process, as seen through
// the proc file system at proc (normally "/proc").
func Self(proc string) (Memory, error) {
	m, err := ReadMounts(filepath.Join(proc, "self", "mountinfo"))
	if err != nil {
		return Memory{}, err
	}
	b, err := ReadBounded(filepath.Join(proc, "self", "cgroup"), maxFile)
	if err != nil {
		return Memory{}, err
	}
	c, ok := m.Memory(b)
	if !ok {
		return Memory{}, errors.New("no memory cgroup hierarchy is mounted")
	}
	return c, nil
}

// ReadBounded reads at most limit bytes of a file and fails when it is
// longer: /proc and cgroup files are small, and a bound keeps a strange
// mount from costing memory.
func ReadBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(bufio.NewReader(f), limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: longer than %d bytes", path, limit)
	}
	return b, nil
}
