package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// netEnv is the network a scenario runs in: the machine's own namespace,
// or a private one holding only a loopback interface. Everything the
// scenario opens (backends, nginx, the exporter, the client) goes through
// it, so a scenario in a private namespace cannot reach anything else.
type netEnv struct {
	name string   // "" for the machine's namespace
	ns   *os.File // the namespace, for setns(2)
}

var nsCounter atomic.Int64

// newNetns creates a network namespace with only lo up, with name
// resolution pointed at 127.0.0.1:53 (see serveDNS), and removes it when
// the test ends. Packet filter rules added with iptables apply to this
// namespace only.
func newNetns(t *testing.T) *netEnv {
	t.Helper()
	name := fmt.Sprintf("nue2e-%d-%d", os.Getpid(), nsCounter.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	// `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over
	// /etc/resolv.conf for the commands it runs: nginx's and the
	// exporter's lookups go to the scenario's own responder and never to
	// the machine's resolver.
	etc := filepath.Join("/etc/netns", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
		os.RemoveAll(etc)
		os.Remove("/etc/netns") // only succeeds when no other namespace uses it
	})
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("bringing up lo in %s: %v: %s", name, err, out)
	}
	f, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &netEnv{name: name, ns: f}
}

// do runs fn with the calling goroutine's thread inside the namespace, so
// the sockets fn creates belong to it. A socket keeps its namespace for
// life, so listeners and connections made here can be used from any
// goroutine afterwards.
func (e *netEnv) do(fn func() error) error {
	if e.ns == nil {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: the runtime discards it when
		// this goroutine ends, so no other goroutine ever runs in the
		// scenario's namespace by accident.
		runtime.LockOSThread()
		if err := unix.Setns(int(e.ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", e.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func (e *netEnv) listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := e.do(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

func (e *netEnv) listenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := e.do(func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

func (e *netEnv) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := e.do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func (e *netEnv) freePort(t *testing.T) int {
	t.Helper()
	p, err := testutil.PickPort(e.listen)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// iptables adds a rule in the scenario's namespace; refusing to run in the
// machine's own namespace is what keeps the suite from touching the host's
// firewall.
func (e *netEnv) iptables(t *testing.T, args ...string) {
	t.Helper()
	if e.name == "" {
		t.Fatalf("refusing to add an iptables rule outside a private network namespace: %v", args)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", e.name, "iptables", "-w"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables %v in %s: %v: %s", args, e.name, err, out)
	}
}

var spawner = make(chan func())

func init() {
	go func() {
		// Locked for good and never used for anything else: this thread
		// outlives every child it forks.
		runtime.LockOSThread()
		for f := range spawner {
			f()
		}
	}()
}

func onSpawnerThread(f func() error) error {
	errc := make(chan error, 1)
	spawner <- func() { errc <- f() }
	return <-errc
}

// removeStaleNamespaces deletes namespaces left by an earlier run of the
// suite that was killed before its cleanup ran (named nue2e-PID-N with
// PID no longer running). Other namespaces are never touched.
func removeStaleNamespaces() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name := f[0]
		var pid, n int
		if _, err := fmt.Sscanf(name, "nue2e-%d-%d", &pid, &n); err != nil || fmt.Sprintf("nue2e-%d-%d", pid, n) != name {
			continue
		}
		if syscall.Kill(pid, 0) == nil || pid == os.Getpid() {
			continue
		}
		exec.Command("ip", "netns", "del", name).Run()
		os.RemoveAll(filepath.Join("/etc/netns", name))
	}
	os.Remove("/etc/netns")
}

// process is a child process run in its own process group, killed with
// its children when the test ends.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done
	log  string
}

// start runs name with args in the namespace, output appended to logFile.
func (e *netEnv) start(t *testing.T, logFile, name string, args ...string) *process {
	t.Helper()
	argv := append([]string{name}, args...)
	if os.Geteuid() == 0 {
		// A PID namespace of its own: if the suite dies without its
		// cleanup, Pdeathsig kills unshare, --kill-child kills the
		// namespace's first process (the nginx master), and the kernel
		// kills every other process in the namespace (the workers, which
		// would otherwise outlive their master).
		argv = append([]string{"unshare", "--pid", "--kill-child=SIGKILL"}, argv...)
	}
	if e.name != "" {
		argv = append([]string{"ip", "netns", "exec", e.name}, argv...)
	}
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig kills the child if the suite dies without cleaning up.
	// It fires when the thread that forked exits, so every child is
	// forked from one thread that lives as long as the suite.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := onSpawnerThread(cmd.Start); err != nil {
		t.Fatalf("starting %s: %v", strings.Join(argv, " "), err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop ends the whole process group: SIGTERM, then SIGKILL after 3s.
func (p *process) stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
	}
	// Workers may outlive a master that already exited.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// skipOrFail skips the test on a developer's machine when a prerequisite
// is missing, but fails it when CI=true: in CI every scenario must run.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a prerequisite is missing, refusing to skip: %s", msg)
	}
	t.Skip(msg)
}

// prereq is something a scenario needs from the machine.
type prereq int

const (
	needRoot   prereq = iota // root: workers as nobody, namespaces, iptables
	needNetns                // a private network namespace with iptables
	needPHPFPM               // php-fpm8.2 (Debian's php-fpm)
)

var (
	prereqOnce sync.Once
	prereqErr  map[prereq]error
)

// checkPrereqs probes the machine once for every prerequisite.
func checkPrereqs() map[prereq]error {
	prereqOnce.Do(func() {
		prereqErr = map[prereq]error{}
		if os.Geteuid() != 0 {
			prereqErr[needRoot] = errors.New("not running as root")
		}
		if prereqErr[needRoot] != nil {
			prereqErr[needNetns] = errors.New("network namespaces need root")
		} else if _, err := exec.LookPath("ip"); err != nil {
			prereqErr[needNetns] = fmt.Errorf("iproute2 not installed: %w", err)
		} else if _, err := exec.LookPath("iptables"); err != nil {
			prereqErr[needNetns] = fmt.Errorf("iptables not installed: %w", err)
		} else if out, err := exec.Command("unshare", "-n", "sh", "-c", "ip link set lo up && iptables -w -A OUTPUT -d 127.0.0.2 -j DROP").CombinedOutput(); err != nil {
			prereqErr[needNetns] = fmt.Errorf("cannot create a network namespace with iptables rules: %v: %s", err, out)
		}
		if _, err := exec.LookPath(phpFPMBinary); err != nil {
			prereqErr[needPHPFPM] = fmt.Errorf("%s not installed (Debian package php-fpm): %w", phpFPMBinary, err)
		}
	})
	return prereqErr
}
