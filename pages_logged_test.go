package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
)

// BenchmarkPagesLogged10k is BenchmarkPages10kAllSignals with nginx's
// error log naming half the servers (connection refused, a third of them
// also truncated responses), as it does for a fleet half refused: every
// row of those servers and every /metrics carries what the log said.
func BenchmarkPagesLogged10k(b *testing.B) {
	const n = 10000
	conf := memoryConfig(b, n)
	startNginx(b, conf)
	ctx, cancel := context.WithCancel(context.Background())
	exp, wait := runAllSignals(b, ctx, conf, n)
	defer wait()
	defer cancel()
	logged := appendLoggedErrors(b, exp, filepath.Join(filepath.Dir(conf), "error.log"), n)
	for _, page := range []struct{ name, path string }{
		{"metrics", "/metrics"},
		{"page", "/"},
		{"api", "/api/v1/targets"},
	} {
		b.Run(page.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := &discardWriter{h: http.Header{}}
				exp.handler.ServeHTTP(w, httpGet(b, page.path))
				if w.code != 0 && w.code != http.StatusOK {
					b.Fatalf("GET %s: %d", page.path, w.code)
				}
			}
		})
	}
	b.Logf("%d servers with logged errors", logged)
}

// appendLoggedErrors appends error lines for every other server of
// memoryConfig's configuration to its error log, as nginx writes them,
// and returns once the exporter has counted them.
func appendLoggedErrors(tb testing.TB, exp *service, path string, n int) int {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	lines := 0
	for i := 0; i < n; i += 2 {
		// The scheme nginx prints for the *_pass of memoryConfig's server.
		peer := fmt.Sprintf("%s://127.0.%d.%d:%d", []string{"http", "https", "fastcgi", "memcached"}[i%4], 1+i/60000, 1+i%250, 1024+i%60000)
		fmt.Fprintf(f, "2026/11/27 12:00:01 [error] 100#100: *%d connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: \"GET /t%d HTTP/1.1\", upstream: \"%s/t%d\", host: \"localhost\"\n", i+1, i, peer, i)
		lines++
		if i%3 == 0 {
			fmt.Fprintf(f, "2026/11/27 12:00:01 [error] 100#100: *%d upstream prematurely closed connection while reading upstream, client: 127.0.0.1, server: , request: \"GET /t%d HTTP/1.1\", upstream: \"%s/t%d\", host: \"localhost\"\n", i+1, i, peer, i)
			lines++
		}
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	var c errorlog.Counts
	for deadline := time.Now().Add(30 * time.Second); ; {
		if s := exp.logs.Totals(); s.Lines[errorlog.LineMatched] >= uint64(lines) {
			exp.logs.ReadCounts(&c)
			return len(c.Targets)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the exporter did not count the %d lines written in 30 s: %+v", lines, exp.logs.Totals().Lines)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
