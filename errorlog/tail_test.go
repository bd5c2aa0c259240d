package errorlog

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

func errLine(peer string) string {
	return fmt.Sprintf("2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: \"GET /?a=b HTTP/1.1\", upstream: \"http://%s/\", host: \"h\"\n", peer)
}

// started runs a Reader on paths over testIndex's targets.
func started(t *testing.T, opts Options, paths ...string) *Reader {
	t.Helper()
	opts.Find = FindOptions{Paths: paths}
	if opts.PollInterval == 0 {
		// inotify alone must do: the poll would hide a missed event.
		opts.PollInterval = time.Hour
	}
	r := New(opts)
	r.Update(&discovery.Set{Targets: testIndex(t).targets})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	waitFor(t, "the reader to look at every file", func() bool {
		s := r.Snapshot()
		n := 0
		for _, c := range s.Files {
			n += c
		}
		return n == len(paths)
	})
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func matched(r *Reader) uint64 {
	s := r.Snapshot()
	for _, te := range s.Targets {
		if te.Key.Upstream == "app" {
			return te.Errors[prober.ReasonConnectionRefused]
		}
	}
	return 0
}

// expect waits for exactly n errors of target app, then checks that no
// more arrive.
func expect(t *testing.T, r *Reader, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d errors", n), func() bool { return matched(r) >= n })
	time.Sleep(50 * time.Millisecond)
	if got := matched(r); got != n {
		t.Fatalf("counted %d errors, want exactly %d", got, n)
	}
}

// writer is nginx's side: a file opened O_APPEND, reopened on demand.
type writer struct {
	t    *testing.T
	path string
	f    *os.File
}

func newWriter(t *testing.T, path string) *writer {
	w := &writer{t: t, path: path}
	w.reopen()
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *writer) reopen() {
	if w.f != nil {
		w.f.Close()
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

func (w *writer) lines(n int, peer string) {
	for range n {
		if _, err := w.f.WriteString(errLine(peer)); err != nil {
			w.t.Fatal(err)
		}
	}
}

func TestTailStartsAtTheEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "error.log")
	w := newWriter(t, path)
	w.lines(5, "10.0.0.5:8080") // history
	r := started(t, Options{}, path)
	w.lines(3, "10.0.0.5:8080")
	expect(t, r, 3)
	if s := r.Snapshot(); s.Files[FileTailing] != 1 {
		t.Errorf("files = %v", s.Files)
	}
}

func TestTailRotation(t *testing.T) {
	cases := []struct {
		name   string
		rotate func(t *testing.T, w *writer)
	}{
		{"rename and reopen (logrotate create)", func(t *testing.T, w *writer) {
			if err := os.Rename(w.path, w.path+".1"); err != nil {
				t.Fatal(err)
			}
			// nginx writes to the renamed file until it reopens.
			w.lines(2, "10.0.0.5:8080")
			if err := os.WriteFile(w.path, nil, 0o640); err != nil {
				t.Fatal(err)
			}
			w.lines(1, "10.0.0.5:8080")
			w.reopen()
		}},
		{"copytruncate", func(t *testing.T, w *writer) {
			if err := os.Truncate(w.path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"delete and re-create", func(t *testing.T, w *writer) {
			if err := os.Remove(w.path); err != nil {
				t.Fatal(err)
			}
			w.lines(2, "10.0.0.5:8080")
			w.reopen()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "error.log")
			w := newWriter(t, path)
			w.lines(4, "10.0.0.5:8080")
			r := started(t, Options{}, path)
			w.lines(2, "10.0.0.5:8080")
			expect(t, r, 2)
			before := matched(r)
			tc.rotate(t, w)
			w.lines(3, "10.0.0.5:8080")
			written := uint64(3)
			switch tc.name {
			case "rename and reopen (logrotate create)":
				written += 3
			case "delete and re-create":
				written += 2
			}
			expect(t, r, before+written)
		})
	}
}

// TestTailTruncatedAndRefilled: a copytruncate refilled past the old
// offset between two looks is noticed by the bytes before the offset.
func TestTailTruncatedAndRefilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "error.log")
	w := newWriter(t, path)
	r := New(Options{Find: FindOptions{Paths: []string{path}}})
	r.Update(&discovery.Set{Targets: testIndex(t).targets})
	tf := &tailFile{path: path, fromEnd: true}
	buf := make([]byte, readChunk)
	w.lines(2, "10.0.9.9:1") // history, another peer
	r.check(tf, buf)
	w.lines(1, "10.0.0.5:8080")
	r.check(tf, buf)
	if got := matched(r); got != 1 {
		t.Fatalf("counted %d, want 1", got)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	w.lines(5, "10.0.0.5:8080") // longer than before
	r.check(tf, buf)
	if got := matched(r); got != 6 {
		t.Fatalf("counted %d after truncate and refill, want 6", got)
	}
	tf.close()
}

func TestTailFileAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "error.log")
	r := started(t, Options{}, path)
	if s := r.Snapshot(); s.Files[FileMissing] != 1 {
		t.Fatalf("files = %v, want one missing", s.Files)
	}
	w := newWriter(t, path)
	w.lines(2, "10.0.0.5:8080")
	expect(t, r, 2)
}

func TestTailHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop.log")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir.log")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	r := started(t, Options{PollInterval: 20 * time.Millisecond}, fifo, loop, sub)
	waitFor(t, "three unreadable files", func() bool { return r.Snapshot().Files[FileUnreadable] == 3 })

	// A log replaced by a FIFO while tailed.
	path := filepath.Join(dir, "error.log")
	w := newWriter(t, path)
	r2 := started(t, Options{PollInterval: 20 * time.Millisecond}, path)
	w.lines(1, "10.0.0.5:8080")
	expect(t, r2, 1)
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the FIFO to be refused", func() bool { return r2.Snapshot().Files[FileUnreadable] == 1 })
}

func TestTailHostileContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "error.log")
	w := newWriter(t, path)
	r := started(t, Options{}, path)
	// A 1 MB line, binary garbage, a line with a forged field, then one
	// real error.
	big := bytes.Repeat([]byte("A"), 1<<20)
	w.f.Write(append(big, '\n'))
	garbage := make([]byte, 64<<10)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rnd.Uint32())
	}
	w.f.Write(garbage)
	w.f.Write([]byte("\n"))
	w.lines(1, "10.0.0.5:8080")
	expect(t, r, 1)
	s := r.Snapshot()
	if s.Lines[LineUnparsed] < 2 {
		t.Errorf("lines = %v, want the long line and the garbage unparsed", s.Lines)
	}
}

// TestContinuationLines: FastCGI stderr copies the application's text,
// newlines included: its continuation lines, even one shaped like an
// entry, count as other.
func TestContinuationLines(t *testing.T) {
	r := New(Options{})
	r.index.Store(testIndex(t))
	text := "2026/11/27 08:14:20 [error] 6#6: *9 FastCGI sent in stderr: \"PHP message: first\n" +
		"PHP message: second\n" +
		errLine("10.0.0.5:8080") +
		"end\" while reading response header from upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/fpm.sock:\", host: \"h\"\n" +
		errLine("10.0.0.5:8080")
	var st lineState
	r.consume(&st, []byte(text))
	s := r.Snapshot()
	if matched(r) != 1 || s.Lines[LineOther] != 4 {
		t.Errorf("matched %d, lines %v; want 1 matched (the entry after the FastCGI one), 4 other", matched(r), s.Lines)
	}
}

// TestMemoryBounded: a line split over many reads never grows the carry
// past nginx's limit.
func TestMemoryBounded(t *testing.T) {
	r := New(Options{})
	var st lineState
	chunk := bytes.Repeat([]byte("x"), 1000)
	for range 10000 {
		r.consume(&st, chunk)
		if cap(st.carry) > 2*MaxLine+1 {
			t.Fatalf("carry grew to %d bytes", cap(st.carry))
		}
	}
	r.consume(&st, []byte("\n"))
	if s := r.Snapshot(); s.Lines[LineUnparsed] != 1 {
		t.Errorf("lines = %v, want one unparsed", s.Lines)
	}
}

func TestSyslogReceiver(t *testing.T) {
	dir, err := os.MkdirTemp("", "nuesl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	s, err := ListenSyslog(sock)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{})
	r.Update(&discovery.Set{Targets: testIndex(t).targets})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Serve(ctx, r); err != nil {
			t.Error(err)
		}
	})
	defer func() {
		cancel()
		wg.Wait()
		if _, err := os.Stat(sock); err == nil {
			t.Error("socket not removed")
		}
	}()
	c, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(c)
	addr := &syscall.SockaddrUnix{Name: sock}
	line := bytes.TrimSuffix([]byte(errLine("10.0.0.5:8080")), []byte("\n"))
	for _, hdr := range []string{"<11>Nov 27 08:14:20 nginx: ", "<11>Nov  7 08:14:20 web1 nginx: ", "<11>Nov 27 08:14:20 web1 custom_tag: "} {
		if err := syscall.Sendto(c, append([]byte(hdr), line...), 0, addr); err != nil {
			t.Fatal(err)
		}
	}
	syscall.Sendto(c, []byte("garbage"), 0, addr)
	expect(t, r, 3)
	waitFor(t, "garbage unparsed", func() bool { return r.Snapshot().Lines[LineUnparsed] == 1 })
}

// TestTailFastGrowth: a log written as fast as the disk takes it (well
// over 100 MB/s) is read with bounded memory and counted exactly.
func TestTailFastGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 48 MB")
	}
	path := filepath.Join(t.TempDir(), "error.log")
	w := newWriter(t, path)
	r := started(t, Options{}, path)
	line := []byte(errLine("10.0.0.5:8080"))
	other := []byte(errLine("10.0.9.9:1"))
	var chunk []byte
	perChunk := 0
	for len(chunk) < 1<<20 {
		chunk = append(chunk, line...)
		chunk = append(chunk, other...)
		perChunk++
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	var peak atomic.Uint64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	const chunks = 48
	for range chunks {
		if _, err := w.f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	want := uint64(chunks * perChunk)
	deadline := time.Now().Add(60 * time.Second)
	for matched(r) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if got := matched(r); got != want {
		t.Fatalf("counted %d, want %d", got, want)
	}
	s := r.Snapshot()
	if s.Lines[LineUnattributed] != want {
		t.Errorf("unattributed %d, want %d", s.Lines[LineUnattributed], want)
	}
	grown := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("wrote %d MB in %s (%.0f MB/s); heap in use grew by at most %d KB", chunks*len(chunk)>>20, elapsed, float64(chunks*len(chunk))/elapsed.Seconds()/1e6, grown>>10)
	if grown > 16<<20 {
		t.Errorf("heap grew by %d MB while reading", grown>>20)
	}
}

// TestTailReloadAddsFromTheEnd: a log a reload adds is read from its end,
// as at start; one it drops is no longer counted.
func TestTailReloadAddsFromTheEnd(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	w1, w2 := newWriter(t, first), newWriter(t, second)
	w2.lines(5, "10.0.0.5:8080") // history of the second log
	r := started(t, Options{}, first)
	w1.lines(1, "10.0.0.5:8080")
	expect(t, r, 1)
	r.opts.Find.Paths = []string{first, second}
	r.Update(&discovery.Set{Targets: testIndex(t).targets})
	waitFor(t, "two files tailed", func() bool { return r.Snapshot().Files[FileTailing] == 2 })
	w2.lines(2, "10.0.0.5:8080")
	expect(t, r, 3)
	r.opts.Find.Paths = []string{second}
	r.Update(&discovery.Set{Targets: testIndex(t).targets})
	waitFor(t, "one file tailed", func() bool { return r.Snapshot().Files[FileTailing] == 1 })
	w1.lines(4, "10.0.0.5:8080")
	w2.lines(1, "10.0.0.5:8080")
	expect(t, r, 4)
}

// TestTailDirectoryRecreated: the log's directory removed and created
// again (a volume remounted) is watched again.
func TestTailDirectoryRecreated(t *testing.T) {
	sub := filepath.Join(t.TempDir(), "nginx")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "error.log")
	w := newWriter(t, path)
	r := started(t, Options{PollInterval: 50 * time.Millisecond, DrainIdle: 100 * time.Millisecond}, path)
	w.lines(1, "10.0.0.5:8080")
	expect(t, r, 1)
	w.f.Close()
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the log to be missing", func() bool { return r.Snapshot().Files[FileMissing] == 1 })
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	w.f = nil
	w.reopen()
	w.lines(2, "10.0.0.5:8080")
	expect(t, r, 3)
}

// TestTailSymlinkedLog: a log path that is a link to a file elsewhere is
// followed by inotify in the target's directory too.
func TestTailSymlinkedLog(t *testing.T) {
	base := t.TempDir()
	data, logs := filepath.Join(base, "data"), filepath.Join(base, "logs")
	for _, d := range []string{data, logs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	real := filepath.Join(data, "error.log")
	w := newWriter(t, real)
	link := filepath.Join(logs, "error.log")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	r := started(t, Options{}, link)
	w.lines(2, "10.0.0.5:8080")
	expect(t, r, 2)
}
