package loadstate

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil/dnstest"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

// benchTree writes 10,000 upstream servers: 1,000 upstream{} blocks in
// 100 included files, each block with 10 servers of one static hostname
// (1,000 distinct names), and returns the loaded configuration.
func benchTree(b *testing.B) (*nginxconf.Config, map[string][]netip.Addr) {
	b.Helper()
	dir := b.TempDir()
	var main strings.Builder
	main.WriteString("events {}\nhttp {\n")
	records := map[string][]netip.Addr{}
	for f := range 100 {
		var inc strings.Builder
		for u := range 10 {
			n := f*10 + u
			host := fmt.Sprintf("h%d.test", n)
			records[host] = []netip.Addr{netip.AddrFrom4([4]byte{127, 1, byte(n >> 8), byte(n)})}
			fmt.Fprintf(&inc, "upstream u%d {\n", n)
			for p := range 10 {
				fmt.Fprintf(&inc, "    server %s:%d;\n", host, 3000+p)
			}
			inc.WriteString("}\n")
		}
		name := filepath.Join(dir, fmt.Sprintf("u%d.conf", f))
		if err := os.WriteFile(name, []byte(inc.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&main, "include %s;\n", name)
	}
	main.WriteString("server {\n listen 8080;\n")
	for n := range 1000 {
		fmt.Fprintf(&main, " location /%d { proxy_pass http://u%d; }\n", n, n)
	}
	main.WriteString("}\n}\n")
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := nginxconf.Load(conf, nginxconf.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if len(cfg.Servers) != 10000 {
		b.Fatalf("%d servers", len(cfg.Servers))
	}
	return cfg, records
}

// selfAsNginx presents the benchmark's own process as nginx's only
// worker, so that SockDiag reads real descriptors and a real netlink
// dump.
type selfAsNginx struct{}

func (selfAsNginx) Find() (*nginxproc.Snapshot, error) {
	p := nginxproc.Process{PID: os.Getpid(), Start: time.Unix(1, 0)}
	return &nginxproc.Snapshot{Master: p, Current: []nginxproc.Process{p}}, nil
}

// BenchmarkTick10k is one interval's work at 10,000 targets: the file
// checks (101 stats), 1,000 lookups, one sock_diag dump with the
// worker's descriptors, and the comparison. Lookups go to a DNS
// responder on loopback through Go's resolver, as in production.
func BenchmarkTick10k(b *testing.B) {
	cfg, records := benchTree(b)
	dns := dnstest.Start(b, records)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns.Addr())
	}}
	tr := New(Options{Finder: selfAsNginx{}, Resolver: r, Evidence: []Evidence{&SockDiag{}}})
	tr.Observe(&discovery.Loaded{Nginx: cfg}, nil)
	ctx := context.Background()
	tr.Tick(ctx)
	if res := tr.Result(); len(res.Servers) != 10000 || len(res.WouldFail) != 0 {
		b.Fatalf("servers %d, would fail %d", len(res.Servers), len(res.WouldFail))
	}
	b.ReportAllocs()
	b.ResetTimer()
	before := cpuTime(b)
	for b.Loop() {
		tr.Tick(ctx)
	}
	// CPU of the whole process (the DNS responder's included: an upper
	// bound), per tick and as a share of one core at the default 15s
	// interval.
	cpu := cpuTime(b) - before
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(100*cpu.Seconds()/float64(b.N)/15, "%core@15s")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ticked10k is a tracker of benchTree's 10,000 servers after one look,
// every name resolving in memory.
func ticked10k(b *testing.B) *Tracker {
	cfg, records := benchTree(b)
	ips := map[string][]string{}
	for h, a := range records {
		ips[h] = []string{a[0].String()}
	}
	tr := New(Options{Finder: selfAsNginx{}, Resolver: mapResolver(ips)})
	tr.Observe(&discovery.Loaded{Nginx: cfg}, nil)
	tr.Tick(context.Background())
	return tr
}

// BenchmarkCollect10k is one scrape of the registry's families at 10,000
// targets (the per-server ones are BenchmarkServersText10k's).
func BenchmarkCollect10k(b *testing.B) {
	tr := ticked10k(b)
	c := NewCollector(tr)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ch := make(chan prometheus.Metric, 64)
		go func() {
			c.Collect(ch)
			close(ch)
		}()
		for range ch {
		}
	}
}

type mapResolver map[string][]string

func (m mapResolver) LookupHost(_ context.Context, h string) ([]string, error) {
	return m[h], nil
}

// BenchmarkSockDiagPeersBusyHost is one worker-socket scan on a host
// with 10,000 TCP sockets that are not nginx's and one that is (see
// busyHost). What the scan allocates must not grow with the host's
// sockets.
func BenchmarkSockDiagPeersBusyHost(b *testing.B) {
	snap, want := busyHost(b, 5000)
	sd := &SockDiag{}
	ctx := context.Background()
	peers, err := sd.Peers(ctx, snap)
	if err != nil {
		b.Fatal(err)
	}
	if len(peers) != 1 || peers[0].Addr != want {
		b.Fatalf("peers %v, want the one connection to %v", peers, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sd.Peers(ctx, snap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServersText10k is the per-server families of 10,000 static
// hostname servers as one scrape writes them (20,000 series).
func BenchmarkServersText10k(b *testing.B) {
	tr := ticked10k(b)
	st := NewServersText(tr)
	var n int64
	b.ReportAllocs()
	for b.Loop() {
		n, _ = st.WriteTo(io.Discard)
	}
	b.ReportMetric(float64(n), "bytes/page")
}
