package statuspage

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// many builds n targets in upstreams of 4 servers: one in ten failing,
// one in twenty marked down, the rest healthy, as a large deployment in
// a partial outage looks.
func many(n int) *indexed {
	out := make(statuses, 0, n)
	refused := errors.New("dial tcp: connect: connection refused")
	for i := range n {
		addr := fmt.Sprintf("10.%d.%d.%d:8080", i>>16&255, i>>8&255, i&255)
		t := &discovery.Target{
			Key:     discovery.Key{Upstream: fmt.Sprintf("app-%04d", i/4), Server: addr, Address: addr, Protocol: "http"},
			Network: "tcp",
			ServerSettings: &discovery.ServerSettings{
				ConnectTimeout: 2 * time.Second, ReadTimeout: 60 * time.Second, SendTimeout: 60 * time.Second},
			Sources: []string{fmt.Sprintf("/etc/nginx/sites-enabled/app-%04d.conf:12", i/4)},
		}
		st := scheduler.Status{Target: t}
		if i%20 != 19 {
			t.Probe = &prober.Peer{Network: "tcp", Address: addr}
			st.HasResult, st.Runs, st.Finished = true, 40, now.Add(-time.Duration(i%15)*time.Second)
			st.Result = prober.Result{Success: true, HTTPStatus: 200, Duration: time.Millisecond}
			st.Result.Phases[prober.PhaseConnect] = 300 * time.Microsecond
			if i%10 == 3 {
				st.Result = prober.Result{Reason: prober.ReasonConnectionRefused, Err: refused, Duration: 200 * time.Microsecond}
			}
		} else {
			t.Params.Down = true
		}
		out = append(out, st)
	}
	return index(out)
}

// indexed is statuses with the scheduler's lookup by labels.
type indexed struct {
	statuses
	at map[discovery.Key]int
}

func index(s statuses) *indexed {
	x := &indexed{statuses: s, at: make(map[discovery.Key]int, len(s))}
	for i := range s {
		x.at[s[i].Target.Key] = i
	}
	return x
}

func (x *indexed) Read(k discovery.Key, st *scheduler.Status) bool {
	i, ok := x.at[k]
	if ok {
		*st = x.statuses[i]
	}
	return ok
}

// loadedOf is the load the targets of src came from, as the serving
// exporter always has one.
func loadedOf(src statuses) *discovery.Loaded {
	set := &discovery.Set{}
	for i := range src {
		set.Targets = append(set.Targets, src[i].Target)
	}
	return &discovery.Loaded{Nginx: &nginxconf.Config{}, Set: set}
}

// countingWriter discards the body and counts the writes that reach the
// connection, to show that a large page is sent while it renders.
type countingWriter struct {
	header http.Header
	writes int
	bytes  int
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(int)     {}
func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.bytes += len(p)
	return len(p), nil
}

func benchmarkRender(b *testing.B, url string) { benchmarkRenderCold(b, url, false) }

// benchmarkRenderCold measures an answer; cold ones after two
// collections, which empty the pools an answer reuses, as they are
// between the fetches of a scraper every 30 s while probes keep the
// collector busy.
func benchmarkRenderCold(b *testing.B, url string, cold bool) {
	src := many(10000)
	h := newHandlers(src, loadedOf(src.statuses), nil)
	req := httptest.NewRequest(http.MethodGet, url, nil)
	b.ReportAllocs()
	var w *countingWriter
	for b.Loop() {
		if cold {
			b.StopTimer()
			runtime.GC()
			runtime.GC()
			b.StartTimer()
		}
		w = &countingWriter{header: http.Header{}}
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(w.bytes), "bytes/page")
}

// BenchmarkPage10k: the status page of 10,000 targets (budget: 200 ms).
func BenchmarkPage10k(b *testing.B) { benchmarkRender(b, "/") }

// BenchmarkPageProblems10k: the same page filtered to problems.
func BenchmarkPageProblems10k(b *testing.B) { benchmarkRender(b, "/?state=problems") }

// BenchmarkAPI10k: GET /api/v1/targets for 10,000 targets (budget: 200 ms).
func BenchmarkAPI10k(b *testing.B) { benchmarkRender(b, "/api/v1/targets") }

// BenchmarkPage10kCold: the status page of 10,000 targets with its pools
// emptied.
func BenchmarkPage10kCold(b *testing.B) { benchmarkRenderCold(b, "/", true) }

// BenchmarkAPI10kCold: GET /api/v1/targets with its pools emptied.
func BenchmarkAPI10kCold(b *testing.B) { benchmarkRenderCold(b, "/api/v1/targets", true) }

// TestLargeAnswersStream: 10,000 targets reach the client in many writes,
// not one buffered document.
func TestLargeAnswersStream(t *testing.T) {
	src := many(10000)
	h := newHandlers(src, loadedOf(src.statuses), nil)
	for _, url := range []string{"/", "/api/v1/targets"} {
		w := &countingWriter{header: http.Header{}}
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
		if w.writes < 10 || w.bytes/w.writes > 64<<10 {
			t.Errorf("%s: %d bytes in %d writes; want a stream of buffer-sized writes", url, w.bytes, w.writes)
		}
	}
}
