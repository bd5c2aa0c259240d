package nginxproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProc builds a /proc tree: btime 1000, and one directory per
// process with stat (ppid, starttime in ticks), cmdline and status.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) *fakeProc {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte("cpu 1 2 3\nbtime 1000\nprocesses 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &fakeProc{t: t, root: root}
}

func (f *fakeProc) add(pid, ppid int, startTicks int64, title string, nspid ...int) {
	f.t.Helper()
	dir := filepath.Join(f.root, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	// The command name may hold spaces and parentheses.
	stat := fmt.Sprintf("%d (ng inx) x) S %d %d %d 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100\n", pid, ppid, pid, pid, startTicks)
	ns := fmt.Sprint(pid)
	for _, n := range nspid {
		ns += fmt.Sprintf("\t%d", n)
	}
	for name, data := range map[string]string{
		"stat":    stat,
		"cmdline": strings.ReplaceAll(title, " -", "\x00-") + "\x00",
		"status":  "Name:\tnginx\nNSpid:\t" + ns + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fakeProc) pidFile(content string) string {
	p := filepath.Join(f.t.TempDir(), "nginx.pid")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func TestFindGenerations(t *testing.T) {
	p := newFakeProc(t)
	p.add(1, 0, 10, "/sbin/init")
	p.add(100, 1, 500, "nginx: master process /usr/sbin/nginx -c /etc/nginx/nginx.conf")
	p.add(101, 100, 600, "nginx: worker process is shutting down")
	p.add(110, 100, 900, "nginx: worker process")
	p.add(111, 100, 901, "nginx: worker process")
	p.add(112, 100, 900, "nginx: cache manager process")
	p.add(113, 100, 902, "nginx: master process /usr/sbin/nginx -c /etc/nginx/nginx.conf") // forked, not yet renamed
	p.add(200, 1, 50, "nginx: worker process")                                             // not a child of the master
	f := &Finder{Proc: p.root, PIDFile: p.pidFile("100\n")}
	s, err := f.Find()
	if err != nil {
		t.Fatal(err)
	}
	if s.Master.PID != 100 || !s.Master.Start.Equal(time.Unix(1005, 0)) {
		t.Errorf("master = %+v", s.Master)
	}
	if len(s.Current) != 3 || len(s.Old) != 1 || s.Old[0].PID != 101 {
		t.Errorf("current %+v old %+v", s.Current, s.Old)
	}
	if got, want := s.LastLoad(), time.Unix(1009, 0); !got.Equal(want) {
		t.Errorf("LastLoad = %v, want %v (the oldest current worker)", got, want)
	}
}

func TestFindThroughPIDNamespace(t *testing.T) {
	p := newFakeProc(t)
	p.add(1, 0, 10, "/sbin/init")
	p.add(300, 299, 700, "nginx: master process nginx -c /srv/a/nginx.conf", 1)
	p.add(301, 300, 800, "nginx: worker process", 7)
	f := &Finder{Proc: p.root, PIDFile: p.pidFile("1")}
	s, err := f.Find()
	if err != nil {
		t.Fatal(err)
	}
	if s.Master.PID != 300 || len(s.Current) != 1 {
		t.Errorf("snapshot = %+v", s)
	}

	// Two containers' masters are both pid 1 inside: only the command
	// line naming the configuration tells them apart.
	p.add(400, 399, 700, "nginx: master process nginx -c /srv/b/nginx.conf", 1)
	if _, err := f.Find(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("ambiguous masters: err = %v, want ErrNotRunning", err)
	}
	f.ConfigFile = "/srv/b/nginx.conf"
	if s, err := f.Find(); err != nil || s.Master.PID != 400 {
		t.Errorf("with ConfigFile: %+v, %v", s, err)
	}
}

func TestFindErrors(t *testing.T) {
	p := newFakeProc(t)
	p.add(1, 0, 10, "/sbin/init")
	p.add(2, 1, 10, "sshd")
	for _, tc := range []struct {
		name, pidFile string
		want          error
	}{
		{"no pid file", filepath.Join(p.root, "missing.pid"), ErrNoPIDFile},
		{"empty pid file", p.pidFile("\n"), ErrNoPIDFile},
		{"garbage", p.pidFile("abc"), ErrNotRunning},
		{"stale pid", p.pidFile("2"), ErrNotRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Finder{Proc: p.root, PIDFile: tc.pidFile}).Find()
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestFindHidden: with hidepid=2 only the exporter's own process is
// readable; that is "cannot see", never "not running".
func TestFindHidden(t *testing.T) {
	p := newFakeProc(t)
	p.add(5, 1, 10, "nginx_upstream_exporter")
	_, err := (&Finder{Proc: p.root, PIDFile: p.pidFile("100")}).Find()
	if !errors.Is(err, ErrNoAccess) {
		t.Errorf("err = %v, want ErrNoAccess", err)
	}
}

// TestFindRealProcess reads this test's own process from the real /proc:
// the start time must be close to now, not off by the boot time or a
// tick conversion.
func TestFindRealProcess(t *testing.T) {
	f := &Finder{}
	if err := f.loadBootTime(); err != nil {
		t.Fatal(err)
	}
	p, err := f.read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(p.start); d < 0 || d > 10*time.Minute {
		t.Errorf("own start time %v is %v from now", p.start, d)
	}
	if p.ppid != os.Getppid() {
		t.Errorf("ppid = %d, want %d", p.ppid, os.Getppid())
	}
}

// BenchmarkFind is one pass over this machine's /proc: what every
// interval costs whatever the number of targets.
func BenchmarkFind(b *testing.B) {
	pid := filepath.Join(b.TempDir(), "nginx.pid")
	if err := os.WriteFile(pid, []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		b.Fatal(err)
	}
	f := &Finder{PIDFile: pid}
	b.ReportAllocs()
	for b.Loop() {
		// Not an nginx master: the whole scan runs, then fails.
		if _, err := f.Find(); !errors.Is(err, ErrNotRunning) {
			b.Fatal(err)
		}
	}
}

// TestFindHidePIDMount: a /proc mounted with hidepid=invisible hides
// nginx even among other visible processes (the exporter's group may
// see some): cannot see, not "not running".
func TestFindHidePIDMount(t *testing.T) {
	p := newFakeProc(t)
	p.add(5, 1, 10, "nginx_upstream_exporter")
	p.add(6, 5, 10, "sh")
	if err := os.MkdirAll(filepath.Join(p.root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	mi := "22 1 0:21 / " + p.root + " rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw,hidepid=invisible\n"
	if err := os.WriteFile(filepath.Join(p.root, "self", "mountinfo"), []byte(mi), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := (&Finder{Proc: p.root, PIDFile: p.pidFile("100")}).Find()
	if !errors.Is(err, ErrNoAccess) {
		t.Errorf("err = %v, want ErrNoAccess", err)
	}
}

func TestPIDFilePath(t *testing.T) {
	for _, tc := range []struct{ flag, directive, prefix, want string }{
		{"/run/custom.pid", "/run/nginx.pid", "", "/run/custom.pid"},
		{"", "/var/run/nginx.pid", "/etc/nginx", "/var/run/nginx.pid"},
		{"", "logs/nginx.pid", "/usr/share/nginx", "/usr/share/nginx/logs/nginx.pid"},
		{"", "", "/etc/nginx", DefaultPIDFile},
	} {
		if got := PIDFilePath(tc.flag, tc.directive, tc.prefix); got != tc.want {
			t.Errorf("PIDFilePath(%q, %q, %q) = %q, want %q", tc.flag, tc.directive, tc.prefix, got, tc.want)
		}
	}
}
