package floor

import (
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/farm"
)

func startFarm(t testing.TB, spec farm.Spec) *farm.Farm {
	t.Helper()
	f, err := farm.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// TestFloorAgainstFarm checks that every kind of farm target answers the
// floor's exchange, and that refusing and hanging targets fail.
func TestFloorAgainstFarm(t *testing.T) {
	for _, mode := range []string{farm.ModeOK, farm.ModeRefuse, farm.ModeHang} {
		spec := farm.Spec{Counts: map[string]int{}, Seed: 1}
		for _, k := range farm.Kinds {
			spec.Counts[k] = 3
		}
		switch mode {
		case farm.ModeRefuse:
			spec.Refuse = 1
		case farm.ModeHang:
			spec.Hang = 1
		}
		f := startFarm(t, spec)
		p := &Prober{Timeout: 300 * time.Millisecond, TLS: &tls.Config{InsecureSkipVerify: true}}
		for _, ft := range f.Targets {
			if ft.Mode != mode {
				t.Fatalf("target %v: want mode %s", ft, mode)
			}
			start := time.Now()
			ok := p.probe(&Target{Kind: ft.Kind, Addr: ft.Addr, Name: "t"})
			took := time.Since(start)
			if ok != (mode == farm.ModeOK) {
				t.Errorf("%s %s target %s: probe ok=%v", mode, ft.Kind, ft.Addr, ok)
			}
			if ft.Kind == farm.KindTCP {
				if ok2 := p.probe(&Target{Kind: "memcached", Addr: ft.Addr, Name: "t"}); ok2 != ok {
					t.Errorf("%s tcp target %s: memcached probe ok=%v, connect probe ok=%v", mode, ft.Addr, ok2, ok)
				}
			}
			if mode == farm.ModeHang && took < 250*time.Millisecond {
				t.Errorf("hanging %s target %s answered in %v", ft.Kind, ft.Addr, took)
			}
			if mode == farm.ModeRefuse && took > 100*time.Millisecond {
				t.Errorf("refusing %s target %s took %v", ft.Kind, ft.Addr, took)
			}
		}
	}
}

// TestSchedule checks that the floor probes each target once per interval.
func TestSchedule(t *testing.T) {
	f := startFarm(t, farm.Spec{Counts: map[string]int{farm.KindTCP: 20}})
	p := &Prober{Interval: 200 * time.Millisecond, Concurrency: 4, Timeout: time.Second}
	for _, ft := range f.Targets {
		p.Targets = append(p.Targets, Target{Kind: ft.Kind, Addr: ft.Addr})
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { p.Run(stop); close(done) }()
	time.Sleep(1010 * time.Millisecond)
	close(stop)
	<-done
	time.Sleep(50 * time.Millisecond)
	s := p.Snapshot()
	// 5 intervals of 20 targets, +/- the edges.
	if s.Probes < 60 || s.Probes > 120 || s.Failures != 0 {
		t.Fatalf("probes=%d failures=%d, want ~100 and 0", s.Probes, s.Failures)
	}
}

func benchmarkKind(b *testing.B, kind string) {
	f := startFarm(b, farm.Spec{Counts: map[string]int{kind: 50}})
	p := &Prober{Timeout: time.Second, TLS: &tls.Config{InsecureSkipVerify: true}}
	var ts []Target
	for _, ft := range f.Targets {
		ts = append(ts, Target{Kind: ft.Kind, Addr: ft.Addr, Name: "t"})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !p.probe(&ts[i%len(ts)]) {
			b.Fatal("probe failed")
		}
	}
}

// The floor's probe, client and farm in one process: an upper bound on the
// client's cost, useful to compare with prober benchmarks run the same way.
func BenchmarkFloorTCP(b *testing.B)     { benchmarkKind(b, farm.KindTCP) }
func BenchmarkFloorHTTP(b *testing.B)    { benchmarkKind(b, farm.KindHTTP) }
func BenchmarkFloorHTTPS(b *testing.B)   { benchmarkKind(b, farm.KindHTTPS) }
func BenchmarkFloorFastCGI(b *testing.B) { benchmarkKind(b, farm.KindFastCGI) }

// TestOffersNginxGroups checks that the floor's handshake offers the
// key-exchange groups nginx (and the exporter's prober) offer, so the
// servers pick the same group for both.
func TestOffersNginxGroups(t *testing.T) {
	ca, err := farm.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	offered := make(chan []tls.CurveID, 1)
	cfg := ca.ServerConfig()
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		offered <- append([]tls.CurveID(nil), h.SupportedCurves...)
		return nil, nil
	}
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*tls.Conn).Handshake()
	}()
	p := &Prober{Timeout: 2 * time.Second, TLS: ClientTLS(nil, "")}
	p.probe(&Target{Kind: "https", Addr: ln.Addr().String(), Name: "t"})
	got := <-offered
	want := []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
	// Go's default list starts with a post-quantum hybrid nginx with
	// OpenSSL 3.0 does not offer: exactly nginx's groups, in its order.
	var filtered []tls.CurveID
	for _, c := range got {
		for _, w := range want {
			if c == w {
				filtered = append(filtered, c)
			}
		}
	}
	if len(got) != len(want) || !slices.Equal(filtered, want) {
		t.Errorf("offered groups %v, want %v", got, want)
	}
}
