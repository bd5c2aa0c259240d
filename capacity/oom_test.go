package capacity

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/cgroupfs"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

const oomChildEnv = "CAPACITY_TEST_OOM_CHILD"

// oomChild is the backend the OOM test kills: it listens on the socket
// named by the environment, says so, and on a line from stdin allocates
// memory until the OOM killer ends it.
func oomChild() {
	ln, err := net.Listen("unix", os.Getenv(oomChildEnv))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	defer ln.Close()
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	var hold [][]byte
	for {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hold = append(hold, b)
		if len(hold) > 1<<14 {
			// 16 GB without an OOM kill: the limit did not apply.
			fmt.Println("not killed")
			os.Exit(3)
		}
	}
}

// TestOOMKill starts a backend in a memory cgroup the test creates, has
// the OOM killer kill it, and reads one OOM kill for its target.
func TestOOMKill(t *testing.T) {
	dir, procs := testutil.MemoryCgroup(t, 48<<20)
	sock := filepath.Join(testutil.ShortDir(t), "oom.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), oomChildEnv+"="+sock)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q", line)
	}
	if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatalf("moving the backend into %s: %v", dir, err)
	}

	tg := target(t, "unix", sock, protocol.HTTP)
	m := newMonitor(tg)
	m.Refresh(context.Background())
	st, _ := m.Lookup(tg.Key)
	if st.Owner == nil || st.Owner.PID != cmd.Process.Pid {
		t.Fatalf("owner %+v, want the child %d", st.Owner, cmd.Process.Pid)
	}
	if !st.OOMKnown || st.OOMKills != 0 {
		t.Fatalf("before: oom kills %d known %v (cgroup file %q)", st.OOMKills, st.OOMKnown, st.Owner.Cgroup.file)
	}

	stdin.Write([]byte("go\n"))
	err := cmd.Wait()
	exited = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("backend exited with %v, want SIGKILL from the OOM killer", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.Refresh(context.Background())
		st, _ = m.Lookup(tg.Key)
		if st.OOMKills == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !st.OOMKnown || st.OOMKills != 1 {
		t.Errorf("after the kill: oom kills %d known %v", st.OOMKills, st.OOMKnown)
	}
	if st.Listen != NotListening {
		t.Errorf("killed backend: %s", st.Listen)
	}
}

// TestOOMKillCgroupV2 needs the memory controller on cgroup v2; where
// the machine's memory controller is on v1 (a hybrid hierarchy), it says
// so: TestOOMKill then ran on v1 and TestParseOOMKill reads v2's format.
func TestOOMKillCgroupV2(t *testing.T) {
	m, err := cgroupfs.ReadMounts("/proc/self/mountinfo")
	if err != nil || m.V2.Dir == "" {
		t.Skip("cgroup v2 is not mounted here; memory.events parsing is covered by TestParseOOMKill")
	}
	ctl, _ := os.ReadFile(filepath.Join(m.V2.Dir, "cgroup.controllers"))
	if !strings.Contains(" "+string(ctl)+" ", " memory") {
		t.Skipf("cgroup v2 at %s has no memory controller (controllers: %q; memory is on cgroup v1 at %q): TestOOMKill covers v1, TestParseOOMKill the v2 file", m.V2.Dir, strings.TrimSpace(string(ctl)), m.V1Memory.Dir)
	}
	// The memory controller is on v2: TestOOMKill used it (MemoryCgroup
	// tries v2 first). Check that a process's memory.events is found.
	self, _ := os.ReadFile("/proc/self/cgroup")
	ref := oomRef(m, self)
	if !strings.HasSuffix(ref.file, "memory.events") {
		t.Errorf("memory cgroup of this process: %q, want a memory.events", ref.file)
	}
}

func TestParseOOMKill(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		err      bool
	}{
		{"v2 memory.events", "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n", 2, false},
		{"v1 memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", 7, false},
		{"no line", "low 0\n", 0, true},
		{"garbage", "oom_kill x\n", 0, true},
	} {
		got, err := parseOOMKill([]byte(tc.in))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: %d, %v", tc.name, got, err)
		}
	}
}

func TestMemoryCgroupPath(t *testing.T) {
	root := t.TempDir()
	v2 := filepath.Join(root, "unified")
	os.MkdirAll(filepath.Join(v2, "system.slice", "php.service"), 0o755)
	os.WriteFile(filepath.Join(v2, "system.slice", "php.service", "memory.events"), []byte("oom_kill 4\n"), 0o644)
	m := cgroupfs.Mounts{V2: cgroupfs.Mount{Dir: v2, Root: "/"}, V1Memory: cgroupfs.Mount{Dir: filepath.Join(root, "memory"), Root: "/"}}
	ref := oomRef(m, []byte("0::/system.slice/php.service\n"))
	if n, err := ref.oomKills(); err != nil || n != 4 {
		t.Errorf("v2: %d, %v (%q)", n, err, ref.file)
	}
	// Hybrid: v2 without memory.events, memory on v1.
	ref = oomRef(m, []byte("4:memory:/docker/abc\n0::/\n"))
	if ref.file != filepath.Join(root, "memory", "docker", "abc", "memory.oom_control") {
		t.Errorf("v1: %q", ref.file)
	}
	if _, err := (cgroupRef{}).oomKills(); err == nil {
		t.Error("unknown cgroup read as a count")
	}
}
