package capacity

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// phpFPM is a real php-fpm master started by a test.
type phpFPM struct {
	dir, conf, sock, status, slow string
	cmd                           *exec.Cmd
	done                          chan struct{}
}

func fpmBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("php-fpm is not installed (scripts/install-test-deps.sh installs it)")
	}
	t.Skip("php-fpm is not installed")
	return ""
}

// startFPM starts php-fpm with one static pool of one worker on a unix
// socket with the given backlog, a status page on its own socket, and a
// script that sleeps for the seconds given in its query string.
func startFPM(t *testing.T, dir string, backlog int) *phpFPM {
	t.Helper()
	return startFPMStatus(t, dir, backlog, true)
}

// startFPMStatus is startFPM with or without pm.status_listen.
func startFPMStatus(t *testing.T, dir string, backlog int, statusListen bool) *phpFPM {
	t.Helper()
	bin := fpmBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("php-fpm's pool user must be root or the test's user; run as root")
	}
	f := &phpFPM{dir: dir, conf: filepath.Join(dir, "fpm.conf"), sock: filepath.Join(dir, "fpm.sock"),
		status: filepath.Join(dir, "st.sock"), slow: filepath.Join(dir, "slow.php")}
	if err := os.WriteFile(f.slow, []byte("<?php usleep((int)($_GET['ms'] ?? 0) * 1000); echo 'done';\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`[global]
pid = %[1]s/fpm.pid
error_log = %[1]s/fpm.log
daemonize = no

[web]
user = root
group = root
listen = %[2]s
listen.backlog = %[3]d
pm = static
pm.max_children = 1
pm.status_path = /status
`, dir, f.sock, backlog)
	if statusListen {
		conf += "pm.status_listen = " + f.status + "\n"
	} else {
		f.status = f.sock
	}
	if err := os.WriteFile(f.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	f.start(t, bin)
	return f
}

func (f *phpFPM) start(t *testing.T, bin string) {
	t.Helper()
	f.cmd = exec.Command(bin, "-F", "-R", "-n", "-y", f.conf)
	f.cmd.Stderr = os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.done = make(chan struct{})
	go func() { f.cmd.Wait(); close(f.done) }()
	t.Cleanup(f.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", f.status)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(f.dir, "fpm.log"))
			t.Fatalf("php-fpm did not start: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *phpFPM) stop() {
	if f.cmd == nil || f.cmd.Process == nil {
		return
	}
	f.cmd.Process.Signal(os.Interrupt)
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		<-f.done
	}
}

// slowRequests sends n requests of ms milliseconds each at once and
// returns a function that waits for them all.
func (f *phpFPM) slowRequests(t *testing.T, n, ms int) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		if i == 1 {
			// Let the worker take the first: connections that arrive
			// together can fill the queue before it does.
			time.Sleep(300 * time.Millisecond)
		}
		wg.Go(func() {
			c, err := net.DialTimeout("unix", f.sock, time.Second)
			if err != nil {
				return // the backlog is full: EAGAIN, as nginx sees it
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Duration(n*ms)*time.Millisecond + 10*time.Second))
			prober.FastCGIGet(c, f.slow, fmt.Sprintf("ms=%d", ms), 1<<20)
		})
	}
	return wg.Wait
}

func fpmTarget(t *testing.T, sock string) *discovery.Target {
	tg := target(t, "unix", sock, protocol.FastCGI)
	tg.Probe.ConnectTimeout = 500 * time.Millisecond
	tg.Probe.ReadTimeout = 500 * time.Millisecond
	tg.Probe.SendTimeout = 500 * time.Millisecond
	return tg
}

func probe(tg *discovery.Target) prober.Result {
	var r prober.Result
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	prober.New().Probe(ctx, tg.Probe, &r)
	return r
}

// waitQueue refreshes until the kernel shows at least n waiting
// connections.
func waitQueue(t *testing.T, m *Monitor, k discovery.Key, n uint32) State {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.Refresh(context.Background())
		st, _ := m.Lookup(k)
		if st.Listen == Listening && st.Listener.Queue >= n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue never reached %d: %+v", n, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitIdle refreshes until the pool's queue is empty: the start-up check
// leaves a connection there until a worker takes it.
func waitIdle(t *testing.T, m *Monitor, k discovery.Key) State {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.Refresh(context.Background())
		st, _ := m.Lookup(k)
		if st.Listen == Listening && st.Listener.Queue == 0 && (st.Pool == nil || st.Pool.StatusPath == "" || st.Status != nil) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool never idle: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPHPFPMBacklogFull saturates a real php-fpm pool (pm static, one
// worker, listen.backlog 1) with slow requests: the queue is full, the
// probe fails as nginx would log it (backlog_full: EAGAIN on a unix
// socket), the pool is saturated, the status page on pm.status_listen
// still answers, and saturation ends with the load.
func TestPHPFPMBacklogFull(t *testing.T) {
	f := startFPM(t, testutil.ShortDir(t), 1)
	tg := fpmTarget(t, f.sock)
	m := newMonitor(tg)

	st := waitIdle(t, m, tg.Key)
	if st.Listen != Listening || st.Listener.Limit != 1 || st.Listener.Queue != 0 {
		t.Fatalf("idle pool: %+v", st)
	}
	if st.Pool == nil || st.Pool.Name != "web" || st.Pool.PM != "static" || st.Pool.MaxChildren != 1 || st.Pool.StatusListen != f.status {
		t.Fatalf("pool from php-fpm's configuration: %+v (owner %+v)", st.Pool, st.Owner)
	}
	if st.Status == nil || st.Saturated || !st.SaturationKnown {
		t.Fatalf("idle pool: status %+v cause %q saturated %v", st.Status, st.StatusCause, st.Saturated)
	}
	if a, _ := st.ActiveProcesses(); a != 0 {
		t.Errorf("idle pool has %d active processes", a)
	}
	if !strings.Contains(st.Owner.Cmdline, "master process") {
		t.Errorf("owner is not the master: %q", st.Owner.Cmdline)
	}

	// One request in the worker and two in the queue (a unix socket
	// queues backlog+1 connections): the socket is full for 3 s.
	wait := f.slowRequests(t, 3, 3000)
	st = waitQueue(t, m, tg.Key, 2)
	if st.Listener.Queue < st.Listener.Limit {
		t.Errorf("queue %d/%d: not full", st.Listener.Queue, st.Listener.Limit)
	}
	if !st.Saturated {
		t.Errorf("full pool not saturated: %+v", st)
	}
	if r := probe(tg); r.Success || r.Reason != prober.ReasonBacklogFull {
		t.Errorf("probe of a full unix backlog: success=%v reason=%q, want backlog_full", r.Success, r.Reason)
	}
	if st.Status == nil {
		t.Fatalf("pm.status_listen did not answer while the pool was full: cause %q", st.StatusCause)
	}
	if a, _ := st.ActiveProcesses(); a != 1 {
		t.Errorf("status of a full pool: %d active", a)
	}
	wait()
	m.Refresh(context.Background())
	st, _ = m.Lookup(tg.Key)
	if st.Saturated || st.Listener.Queue != 0 {
		t.Errorf("after the load: saturated=%v queue=%d (%s)", st.Saturated, st.Listener.Queue, st.SaturationWhy)
	}
}

// TestPHPFPMReadTimeout: with a normal backlog the queued connection
// waits, the probe times out reading (read_timeout, as nginx logs an
// upstream that accepts and never answers), and the pool is still
// saturated, not down.
func TestPHPFPMReadTimeout(t *testing.T) {
	f := startFPM(t, testutil.ShortDir(t), 511)
	tg := fpmTarget(t, f.sock)
	m := newMonitor(tg)
	wait := f.slowRequests(t, 2, 2000)
	defer wait()
	waitQueue(t, m, tg.Key, 1)
	if r := probe(tg); r.Success || r.Reason != prober.ReasonReadTimeout {
		t.Errorf("probe of a busy pool: success=%v reason=%q, want read_timeout", r.Success, r.Reason)
	}
	m.Refresh(context.Background())
	st, _ := m.Lookup(tg.Key)
	if !st.Saturated || st.Listener.Limit != 511 {
		t.Errorf("busy pool with a normal backlog: saturated=%v %+v", st.Saturated, st.Listener)
	}
	if st.Status == nil {
		t.Errorf("status_listen silent: %q", st.StatusCause)
	}
}

// TestPHPFPMRestart stops and starts php-fpm: one restart, a new start
// time, a new socket inode at the same path.
func TestPHPFPMRestart(t *testing.T) {
	f := startFPM(t, testutil.ShortDir(t), 8)
	tg := fpmTarget(t, f.sock)
	m := newMonitor(tg)
	before := waitIdle(t, m, tg.Key)
	if before.Owner == nil || before.Restarts != 0 {
		t.Fatalf("before: %+v", before)
	}
	f.stop()
	m.Refresh(context.Background())
	if st, _ := m.Lookup(tg.Key); st.Listen != NotListening {
		t.Errorf("stopped php-fpm: %s", st.Listen)
	}
	// starttime has a resolution of 10 ms: make the new one differ.
	time.Sleep(20 * time.Millisecond)
	f.start(t, fpmBinary(t))
	m.Refresh(context.Background())
	after, _ := m.Lookup(tg.Key)
	if after.Restarts != 1 {
		t.Errorf("restarts %d, want 1", after.Restarts)
	}
	if after.Owner == nil || !after.Owner.Start.After(before.Owner.Start) || after.Listener.Inode == before.Listener.Inode {
		t.Errorf("after a restart: owner %+v inode %d (before %+v inode %d)", after.Owner, after.Listener.Inode, before.Owner, before.Listener.Inode)
	}
	if !after.LastRestart.Equal(after.Owner.Start) {
		t.Errorf("last restart %v, want the new start %v", after.LastRestart, after.Owner.Start)
	}
	m.Refresh(context.Background())
	if st, _ := m.Lookup(tg.Key); st.Restarts != 1 {
		t.Errorf("restarts %d on a quiet refresh", st.Restarts)
	}
}

// TestPHPFPMStatusOnPoolSocket: without pm.status_listen the status page
// is served by the pool's own worker. Idle, it answers (and the worker
// serving it is not counted as busy); full, it cannot answer and the
// exporter says why, while the kernel's queue still tells the truth.
func TestPHPFPMStatusOnPoolSocket(t *testing.T) {
	f := startFPMStatus(t, testutil.ShortDir(t), 16, false)
	tg := fpmTarget(t, f.sock)
	m := newMonitor(tg)
	st := waitIdle(t, m, tg.Key)
	if st.Status == nil || st.Saturated {
		t.Fatalf("idle pool: status %+v cause %q saturated %v (%s)", st.Status, st.StatusCause, st.Saturated, st.SaturationWhy)
	}
	if a, _ := st.ActiveProcesses(); a != 0 {
		t.Errorf("idle pool read through its own socket: %d active", a)
	}
	if i, _ := st.IdleProcesses(); i != 1 {
		t.Errorf("idle pool: %d idle", i)
	}
	wait := f.slowRequests(t, 3, 1500)
	defer wait()
	st = waitQueue(t, m, tg.Key, 1)
	if st.Status != nil || st.StatusCause != CausePoolFull || !st.Saturated {
		t.Errorf("full pool: status %+v cause %q saturated %v", st.Status, st.StatusCause, st.Saturated)
	}
}
