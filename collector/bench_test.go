package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// bigSource is 10,000 targets, half failing, as a large nginx would have.
func bigSource(n int) fakeSource {
	src := make(fakeSource, n)
	for i := range src {
		addr := fmt.Sprintf("10.%d.%d.%d:8080", i>>16&255, i>>8&255, i&255)
		st := scheduler.Status{
			Target:    tgt(fmt.Sprintf("tenant%05d", i), addr, addr, "http", defaults, true),
			HasResult: true, Finished: time.Now(), Runs: uint64(i),
			Result: prober.Result{Success: i%2 == 0, Duration: time.Millisecond, HTTPStatus: 200},
		}
		if i%2 == 1 {
			st.Result.Reason = prober.ReasonConnectionRefused
			st.Failures[1] = uint64(i)
		}
		src[i] = st
	}
	return src
}

// BenchmarkMetricsPage10k measures a whole /metrics response for 10,000
// targets through the real handler.
func BenchmarkMetricsPage10k(b *testing.B) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(bigSource(10000)))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		w.Body = nil
		h.ServeHTTP(discardRecorder{w}, req)
	}
}

type discardRecorder struct{ *httptest.ResponseRecorder }

func (d discardRecorder) Write(p []byte) (int, error) { return io.Discard.Write(p) }

// BenchmarkTextWriter10k measures the per-target part of /metrics as
// served: 10,000 targets, half failing.
func BenchmarkTextWriter10k(b *testing.B) {
	tw := NewTextWriter(bigSource(10000))
	var n int64
	b.ReportAllocs()
	for b.Loop() {
		n, _ = tw.WriteTo(io.Discard)
	}
	b.ReportMetric(float64(n), "bytes/page")
}

// BenchmarkTextWriter10kScheduler is BenchmarkTextWriter10k reading a real
// scheduler, whose targets were each probed (half refused): each family
// reads every target's compact state under its lock.
func BenchmarkTextWriter10kScheduler(b *testing.B) {
	src := bigSource(10000)
	targets := make([]*discovery.Target, len(src))
	for i := range src {
		targets[i] = src[i].Target
	}
	s := scheduler.New(scheduler.Options{Interval: time.Second, Concurrency: 64, Prober: halfFailing{new(atomic.Uint64)}})
	s.Update(&discovery.Set{Targets: targets, Probed: len(targets)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	for all := false; !all; time.Sleep(100 * time.Millisecond) {
		all = true
		s.Each(func(st *scheduler.Status) { all = all && st.HasResult })
	}
	cancel()
	<-done
	tw := NewTextWriter(s)
	var n int64
	b.ReportAllocs()
	for b.Loop() {
		n, _ = tw.WriteTo(io.Discard)
	}
	b.ReportMetric(float64(n), "bytes/page")
}

// halfFailing refuses every other probe.
type halfFailing struct{ n *atomic.Uint64 }

func (h halfFailing) Probe(_ context.Context, _ *prober.Peer, r *prober.Result) {
	r.Duration = time.Millisecond
	if h.n.Add(1)%2 == 0 {
		r.Success, r.HTTPStatus = true, 200
		return
	}
	r.Fail(prober.ReasonConnectionRefused, errors.New("dial tcp 10.0.0.1:8080: connect: connection refused"))
}

// BenchmarkHandler10k serves /metrics of 10,000 frozen targets read in
// ranges, plain and gzipped, by the page's workers (min(GOMAXPROCS, 4))
// and by one goroutine, as before: the time, the bytes allocated and the
// most chunk buffers a scrape held.
func BenchmarkHandler10k(b *testing.B) {
	src := rangeSource{bigSource(10000)}
	for _, c := range []struct {
		name    string
		gz      bool
		workers int
	}{{"plain", false, 0}, {"gzip", true, 0}, {"plain-sequential", false, 1}, {"gzip-sequential", true, 1}} {
		b.Run(c.name, func(b *testing.B) {
			e := newExposition()
			if c.workers > 0 {
				e.workers = func() int { return c.workers }
			}
			h := newHandler(prometheus.NewRegistry(), NewTextWriter(src), 1, nil, e, &LogsText{src: logsFixture()})
			req := httptest.NewRequest("GET", "/metrics", nil)
			if c.gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			var n int
			b.ReportAllocs()
			for b.Loop() {
				w := &countingRecorder{ResponseRecorder: httptest.NewRecorder()}
				h.ServeHTTP(w, req)
				n = w.n
			}
			b.ReportMetric(float64(n), "bytes/page")
			b.ReportMetric(float64(e.peak.Load()), "peak-chunks")
		})
	}
}

type countingRecorder struct {
	*httptest.ResponseRecorder
	n int
}

func (c *countingRecorder) Write(p []byte) (int, error) {
	c.n += len(p)
	return len(p), nil
}

// BenchmarkLogsText5k serves the error log's per-target families of
// 5,000 logged servers (half of 10,000 refused) through Handler, plain
// and gzipped, by the page's workers.
func BenchmarkLogsText5k(b *testing.B) {
	for _, gz := range []bool{false, true} {
		name := "plain"
		if gz {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			h := newHandler(prometheus.NewRegistry(), NewTextWriter(fixture()), 1, nil, newExposition(), &LogsText{src: bigLogs(5000)})
			req := httptest.NewRequest("GET", "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			var n int
			b.ReportAllocs()
			for b.Loop() {
				w := &countingRecorder{ResponseRecorder: httptest.NewRecorder()}
				h.ServeHTTP(w, req)
				n = w.n
			}
			b.ReportMetric(float64(n), "bytes/page")
		})
	}
}
