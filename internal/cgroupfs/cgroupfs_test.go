package cgroupfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadMounts(t *testing.T) {
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	write(t, mi, strings.Join([]string{
		"22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw",
		"30 22 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw",
		"31 22 0:27 /docker/abc /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory",
		"32 22 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct",
		"garbage line",
	}, "\n"))
	m, err := ReadMounts(mi)
	if err != nil {
		t.Fatal(err)
	}
	want := Mounts{V2: Mount{Dir: "/sys/fs/cgroup/unified", Root: "/"}, V1Memory: Mount{Dir: "/sys/fs/cgroup/mem ory", Root: "/docker/abc"}}
	if m != want {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	if _, err := ReadMounts(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestLimit builds cgroup trees in a temporary directory: the tightest
// limit of the cgroup and its ancestors binds, "max" and v1's
// page-rounded LONG_MAX mean none, and a container's own cgroup (mount
// root /docker/ID) is found under the mount.
func TestLimit(t *testing.T) {
	dir := t.TempDir()
	v2 := filepath.Join(dir, "v2")
	write(t, filepath.Join(v2, "memory.max"), "max\n")
	write(t, filepath.Join(v2, "system.slice", "memory.max"), "1073741824\n")
	write(t, filepath.Join(v2, "system.slice", "app.service", "memory.max"), "max\n")
	write(t, filepath.Join(v2, "system.slice", "app.service", "memory.events"), "oom_kill 0\n")
	write(t, filepath.Join(v2, "free", "memory.max"), "max\n")
	write(t, filepath.Join(v2, "free", "memory.events"), "oom_kill 0\n")
	v1 := filepath.Join(dir, "v1")
	write(t, filepath.Join(v1, "memory.limit_in_bytes"), "9223372036854771712\n")
	write(t, filepath.Join(v1, "sidecar", "memory.limit_in_bytes"), "67108864\n")

	tests := []struct {
		name    string
		mounts  Mounts
		cgroup  string
		want    int64
		wantErr error
	}{
		{"v2 parent limit binds", Mounts{V2: Mount{Dir: v2, Root: "/"}}, "0::/system.slice/app.service\n", 1 << 30, nil},
		{"v2 no limit", Mounts{V2: Mount{Dir: v2, Root: "/"}}, "0::/free\n", 0, ErrNoLimit},
		{"v1 container", Mounts{V1Memory: Mount{Dir: v1, Root: "/docker/abc"}}, "5:memory:/docker/abc/sidecar\n", 64 << 20, nil},
		{"v1 unlimited", Mounts{V1Memory: Mount{Dir: v1, Root: "/"}}, "5:memory:/\n", 0, ErrNoLimit},
		{"hybrid prefers v2 with memory", Mounts{V2: Mount{Dir: v2, Root: "/"}, V1Memory: Mount{Dir: v1, Root: "/"}}, "5:memory:/sidecar\n0::/system.slice/app.service\n", 1 << 30, nil},
		{"hybrid falls back to v1", Mounts{V2: Mount{Dir: v2, Root: "/"}, V1Memory: Mount{Dir: v1, Root: "/"}}, "5:memory:/sidecar\n0::/user.slice\n", 64 << 20, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := tt.mounts.Memory([]byte(tt.cgroup))
			if !ok {
				t.Fatal("no memory cgroup")
			}
			got, err := c.Limit()
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("Limit() = %d, %v; want %d, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, ok := (Mounts{}).Memory([]byte("0::/\n")); ok {
		t.Fatal("a memory cgroup without any mount")
	}
}

func TestLimitGarbage(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "memory.max"), "lots\n")
	if _, err := (Memory{Dir: dir, Top: dir, V2: true}).Limit(); err == nil || errors.Is(err, ErrNoLimit) {
		t.Fatalf("garbage limit: %v", err)
	}
}

// TestSelf reads this machine's own cgroup: whatever it is, it must be
// found, and the limit is either a positive number or ErrNoLimit.
func TestSelf(t *testing.T) {
	c, err := Self("/proc")
	if err != nil {
		t.Skipf("no memory cgroup on this machine: %v", err)
	}
	v, err := c.Limit()
	if err != nil && !errors.Is(err, ErrNoLimit) {
		t.Fatal(err)
	}
	if err == nil && v <= 0 {
		t.Fatalf("limit %d", v)
	}
	t.Logf("%+v: %d %v", c, v, err)
}

func TestReadBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "12345")
	if _, err := ReadBounded(p, 4); err == nil {
		t.Fatal("5 bytes read under a bound of 4")
	}
	if b, err := ReadBounded(p, 5); err != nil || string(b) != "12345" {
		t.Fatalf("%q %v", b, err)
	}
}

// FuzzParse feeds arbitrary mountinfo, /proc/PID/cgroup and limit files
// to the parsers: no panic, and a parsed limit is never negative.
func FuzzParse(f *testing.F) {
	f.Add([]byte("31 22 0:27 /docker/abc /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n"), []byte("5:memory:/docker/abc/x\n0::/\n"), []byte("67108864\n"))
	f.Add([]byte("30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"), []byte("0::/a/../../b\n"), []byte("max\n"))
	f.Fuzz(func(t *testing.T, mountinfo, cgroup, limit []byte) {
		m := parseMounts(mountinfo)
		m.Memory(cgroup)
		if v, err := parseLimit(limit); err == nil && v < 0 {
			t.Fatalf("limit %d from %q", v, limit)
		}
	})
}
