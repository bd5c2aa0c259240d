package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// fakeSource holds n finished statuses: a quarter each of tcp, http, https
// and fastcgi, one in ten failing.
type fakeSource []scheduler.Status

func (f fakeSource) Each(fn func(st *scheduler.Status)) {
	var cp scheduler.Status
	for i := range f {
		cp = f[i]
		fn(&cp)
	}
}

// Ranges reads the statuses in ranges, as the scheduler does for
// collector.Handler's parallel rendering.
func (f fakeSource) Ranges() (int, func(from, to int, fn func(st *scheduler.Status))) {
	return len(f), func(from, to int, fn func(st *scheduler.Status)) { f[from:to].Each(fn) }
}

func newFakeSource(n int) fakeSource {
	protos := []string{"memcached", "http", "https", "fastcgi"}
	out := make(fakeSource, n)
	now := time.Now()
	// One value for every target, as discovery.Build shares it.
	settings := &discovery.ServerSettings{
		Params:         nginxconf.ServerParams{Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second},
		ConnectTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, SendTimeout: 5 * time.Second,
	}
	for i := range out {
		addr := fmt.Sprintf("127.0.%d.%d:%d", i/60000, 2+(i/240)%250, 10000+i%240)
		t := &discovery.Target{
			Key:            discovery.Key{Upstream: fmt.Sprintf("t%d", i), Server: addr, Address: addr, Protocol: protos[i%4]},
			ServerSettings: settings,
			Probe:          &prober.Peer{Network: "tcp", Address: addr},
		}
		st := scheduler.Status{Target: t, HasResult: true, Finished: now, Runs: 100}
		st.Result.Success = i%10 != 0
		st.Result.Duration = time.Millisecond
		if !st.Result.Success {
			st.Result.Reason = prober.ReasonConnectionRefused
			st.Failures[3] = 10
		}
		if protos[i%4] == "http" || protos[i%4] == "https" {
			st.Result.HTTPStatus = 200
		}
		if protos[i%4] == "https" {
			st.Result.TLSNotAfter = now.Add(24 * time.Hour)
		}
		out[i] = st
	}
	return out
}

// benchmarkScrape times one /metrics request, as Prometheus sends it
// (gzip accepted) or not. generic selects the reference path (Collector in
// a registry, served by promhttp) over the exporter's collector.Handler.
func benchmarkScrape(b *testing.B, n int, gz, generic bool, opts ...collector.Option) {
	src := newFakeSource(n)
	reg := prometheus.NewRegistry()
	var h http.Handler
	if generic {
		reg.MustRegister(collector.New(src, opts...))
		h = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	} else {
		h = collector.Handler(reg, collector.NewTextWriter(src, opts...), 4, nil)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		b.SetBytes(int64(w.n))
	}
}

type discardWriter struct {
	h http.Header
	n int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return io.Discard.Write(p)
}
func (w *discardWriter) WriteHeader(int) {}

// Target: /metrics with 10,000 servers answers in under 100 ms.
func BenchmarkScrape10k(b *testing.B)            { benchmarkScrape(b, 10000, false, false) }
func BenchmarkScrape10kGzip(b *testing.B)        { benchmarkScrape(b, 10000, true, false) }
func BenchmarkScrape10kGeneric(b *testing.B)     { benchmarkScrape(b, 10000, false, true) }
func BenchmarkScrape10kGenericGzip(b *testing.B) { benchmarkScrape(b, 10000, true, true) }

// Without the per-phase and per-timeout series (--no-collector.probe.phases
// --no-collector.probe.timeouts).
func BenchmarkScrape10kLean(b *testing.B) {
	benchmarkScrape(b, 10000, false, false, collector.WithoutPhases(), collector.WithoutTimeouts())
}
func BenchmarkScrape10kLeanGzip(b *testing.B) {
	benchmarkScrape(b, 10000, true, false, collector.WithoutPhases(), collector.WithoutTimeouts())
}
