package discovery

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// writeMixedConfig writes the benchmark harness's configuration
// (tools/bench/confgen) with per servers per upstream block: with per 1,
// one upstream block and one location per server, tcp (memcached), http,
// https and fastcgi in turn, with the timeouts set once at http{} level.
func writeMixedConfig(t *testing.T, n, per int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nginx.conf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "worker_processes 1;\nevents { worker_connections 1024; }\nhttp {\n")
	for _, m := range []string{"proxy", "fastcgi", "memcached"} {
		fmt.Fprintf(w, "    %s_connect_timeout 5000ms;\n    %s_read_timeout 5000ms;\n    %s_send_timeout 5000ms;\n", m, m, m)
	}
	for u := 0; u < n/per; u++ {
		fmt.Fprintf(w, "    upstream t%d {", u)
		for i := u * per; i < (u+1)*per; i++ {
			fmt.Fprintf(w, " server 127.0.%d.%d:%d;", 1+i/60000, 2+(i/240)%250, 10000+i%240)
		}
		fmt.Fprintf(w, " }\n")
	}
	fmt.Fprintf(w, "    server {\n        listen 127.0.0.1:8080;\n")
	for i := 0; i < n/per; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(w, "        location /t%d { set $memcached_key $uri; memcached_pass t%d; }\n", i, i)
		case 1:
			fmt.Fprintf(w, "        location /t%d { proxy_pass http://t%d; }\n", i, i)
		case 2:
			fmt.Fprintf(w, "        location /t%d { proxy_pass https://t%d; }\n", i, i)
		default:
			fmt.Fprintf(w, "        location /t%d { fastcgi_pass t%d; }\n", i, i)
		}
	}
	fmt.Fprintf(w, "    }\n}\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTargetSetMemory10k measures what a target set of 10,000 mixed
// targets keeps alive once the configuration model is gone: the targets,
// their peers, shared settings, rendered labels, strings and source
// positions. MEMPROFILE=path writes a heap profile of that live set
// (go test -memprofilerate=1 for every allocation; go tool pprof -top
// -inuse_space path).
func TestTargetSetMemory10k(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	const n = 10000
	for _, per := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d servers per upstream", per), func(t *testing.T) {
			measureTargetSet(t, n, per)
		})
	}
}

func measureTargetSet(t *testing.T, n, per int) {
	path := writeMixedConfig(t, n, per)
	// A first small load sets up what the parser builds once per
	// process (its directive tables), which is not the set's.
	if _, err := nginxconf.Load(writeMixedConfig(t, 4, 1), nginxconf.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	base, baseObjects, baseSpans := liveHeapAndObjects()
	cfg, err := nginxconf.Load(path, nginxconf.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set := Build(context.Background(), cfg, Options{})
	if set.Probed != n {
		t.Fatalf("%d probed targets, want %d", set.Probed, n)
	}
	cfg = nil
	heap, objects, spans := liveHeapAndObjects()
	live, liveObjects := int64(heap)-int64(base), int64(objects)-int64(baseObjects)
	testutil.WriteHeapProfile(t)
	runtime.KeepAlive(set)
	perTarget := live / int64(n)
	t.Logf("target set of %d mixed targets, %d per upstream: %.2f MB live in %d objects, %d B per target (Target %d B, Peer %d B); heap spans in use %+.2f MB",
		n, per, float64(live)/1e6, liveObjects, perTarget, unsafe.Sizeof(Target{}), unsafe.Sizeof(prober.Peer{}), (float64(spans)-float64(baseSpans))/1e6)
	// Measured with one server per upstream (the harness's
	// configuration) 533 B, with four 440 B; of the 533 B the rendered
	// labels (~90 B) and the source position (the configuration's path
	// and line, here ~75 B) are the target's own strings, and a quarter
	// of a TLS settings value (144 B: with verification off, each
	// upstream block verifies its own name). 565 B and 461 B when each
	// target was a few allocations of its own, 757 B before the targets
	// shared their settings. The bound catches a per-target copy of
	// anything targets share (server settings, TLS settings, the probe
	// request); it grows with the temporary directory's path, which
	// every position repeats.
	bound := 490 + int64(len(path))
	if perTarget > bound {
		t.Errorf("%d B per target, over the %d B bound", perTarget, bound)
	}
	// A set is a few allocations (targets, peers, labels, positions,
	// TLS settings in growing chunks, the shared values), not a few per
	// target: its long-lived objects do not pin spans among the
	// parser's and the probes' garbage. Measured 18-26 objects, and
	// spans in use 0.13 MB beyond the live bytes with one server per
	// upstream (65,018 objects and 1.53 MB when each target was several
	// allocations of its own: 7.19 MB of spans for 5.66 MB live).
	if liveObjects > 100 {
		t.Errorf("the set is %d live objects, %.2f per target", liveObjects, float64(liveObjects)/float64(n))
	}
	if over := int64(spans) - int64(baseSpans) - live; over > 512<<10 {
		t.Errorf("the set's spans hold %.2f MB beyond its %.2f MB live", float64(over)/1e6, float64(live)/1e6)
	}
}

// liveHeapAndObjects is testutil.LiveHeap with the number of live
// objects and the bytes of the spans that hold them (HeapInuse: a span
// with one live object left in it counts whole).
func liveHeapAndObjects() (bytes, objects, spans uint64) {
	bytes = testutil.LiveHeap()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return bytes, ms.HeapObjects, ms.HeapInuse
}

// TestTargetLoggersMemory10k: a target that logs keeps nothing of it.
// Half of 10,000 targets log a line at warn, as the scheduler does when a
// server starts failing, through a text handler at info level (serve's
// default); what the set holds afterwards must not grow with them.
func TestTargetLoggersMemory10k(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	const n = 10000
	cfg, err := nginxconf.Load(writeMixedConfig(t, n, 1), nginxconf.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	set := Build(context.Background(), cfg, Options{Logger: logger})
	cfg = nil
	for _, tg := range set.Targets {
		// Asked for on every probe result; most log nothing.
		_ = tg.Logger().Enabled(context.Background(), slog.LevelDebug)
	}
	before := testutil.LiveHeap()
	for i, tg := range set.Targets {
		if i%2 == 0 {
			tg.Logger().Warn("upstream server failing", "reason", "connection_refused", "err", "connect: connection refused")
		}
	}
	grown := int64(testutil.LiveHeap()) - int64(before)
	runtime.KeepAlive(set)
	t.Logf("%d of %d targets logged a line: live heap %+d B (%.1f B per target that logged)", n/2, n, grown, float64(grown)/(n/2))
	// Measured about 0 (within a few KB of noise); a logger kept per
	// target that logged was 280 B each (1.4 MB here), beside a 64 B
	// stand-in for every target that had asked for its logger.
	if grown > 64<<10 {
		t.Errorf("logging a line from %d targets kept %d B", n/2, grown)
	}
}

// BenchmarkBuild10k is the target set's part of a reload at 10,000
// mixed targets: Build from a loaded model.
func BenchmarkBuild10k(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "nginx.conf")
	var conf strings.Builder
	conf.WriteString("events {}\nhttp {\n")
	passes := []string{"proxy_pass http://", "proxy_pass https://", "fastcgi_pass ", "memcached_pass "}
	for i := range 10000 {
		fmt.Fprintf(&conf, "upstream t%d { server 127.0.%d.%d:%d; }\n", i, 1+i/60000, 1+i%250, 1024+i%60000)
	}
	conf.WriteString("server {\n")
	for i := range 10000 {
		fmt.Fprintf(&conf, "location /t%d { %st%d; }\n", i, passes[i%len(passes)], i)
	}
	conf.WriteString("}\n}\n")
	if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := nginxconf.Load(path, nginxconf.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if set := Build(context.Background(), cfg, Options{}); set.Probed != 10000 {
			b.Fatalf("%d targets", set.Probed)
		}
	}
}
