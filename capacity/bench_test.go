package capacity

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// benchTargets listens on n unix sockets (never accepting) and returns a
// target for each: the worst case of docs/performance.md, every target
// local, every socket held by one process with n descriptors.
func benchTargets(b testing.TB, n int) []*discovery.Target {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n+1024) {
		if lim.Max < uint64(n+1024) {
			b.Skipf("needs %d open files; the hard limit is %d", n+1024, lim.Max)
		}
		lim.Cur = uint64(n + 1024)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			b.Skipf("cannot raise the open files limit to %d: %v", lim.Cur, err)
		}
	}
	dir, err := os.MkdirTemp("", "capb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	targets := make([]*discovery.Target, 0, n)
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("%d.sock", i))
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { syscall.Close(fd) })
		if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Listen(fd, 16); err != nil {
			b.Fatal(err)
		}
		tg, err := discovery.Arbitrary("unix:"+path, "", protocol.Kind{Protocol: protocol.FastCGI}, discovery.Options{})
		if err != nil {
			b.Fatal(err)
		}
		targets = append(targets, tg)
	}
	return targets
}

// BenchmarkRefresh10k is one refresh of 10,000 local targets in the
// steady state (owners cached): one sock_diag dump, a stat and a readlink
// per socket. It reports the heap the monitor keeps between refreshes.
func BenchmarkRefresh10k(b *testing.B) {
	targets := benchTargets(b, 10000)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: 15 * time.Second})
	m.Refresh(context.Background())
	n := 0
	m.Each(func(*discovery.Target, *State) { n++ })
	if n != len(targets) {
		b.Fatalf("%d of %d targets seen", n, len(targets))
	}
	for b.Loop() {
		m.Refresh(context.Background())
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "retained-MB")
	runtime.KeepAlive(m)
}

// BenchmarkRefresh10kColdScan is a refresh that has to scan /proc for
// every owner (the first refresh, or after every backend restarted).
func BenchmarkRefresh10kColdScan(b *testing.B) {
	targets := benchTargets(b, 10000)
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: 15 * time.Second})
	for b.Loop() {
		clear(m.proc.cache)
		m.Refresh(context.Background())
	}
}

// BenchmarkTextWriter10k is one scrape of the capacity families of
// 10,000 local targets, as /metrics renders them.
func BenchmarkTextWriter10k(b *testing.B) {
	targets := benchTargets(b, 10000)
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: 15 * time.Second})
	m.Refresh(context.Background())
	tw := NewTextWriter(m)
	var n int64
	for b.Loop() {
		w, err := tw.WriteTo(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		n = w
	}
	b.ReportMetric(float64(n), "bytes/page")
}

// BenchmarkTextWriter10kHandler is the capacity families of 10,000 local
// targets served by collector.Handler, in parts rendered by up to
// GOMAXPROCS goroutines (plain and gzipped).
func BenchmarkTextWriter10kHandler(b *testing.B) {
	targets := benchTargets(b, 10000)
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: 15 * time.Second})
	m.Refresh(context.Background())
	h := collector.Handler(prometheus.NewRegistry(), collector.NewTextWriter(emptySource{}), 1, nil, NewTextWriter(m))
	for _, gz := range []bool{false, true} {
		name := "plain"
		if gz {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			for b.Loop() {
				w := &discardResponse{h: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != 0 && w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// discardResponse is a client that reads and drops the page.
type discardResponse struct {
	h    http.Header
	code int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(code int)        { d.code = code }

// BenchmarkCollect10k is one scrape of the capacity families of 10,000
// local targets through the registry (the reference rendering).
func BenchmarkCollect10k(b *testing.B) {
	targets := benchTargets(b, 10000)
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: 15 * time.Second})
	m.Refresh(context.Background())
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(m))
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
