package farm_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/confgen"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/farm"
)

// TestErrorLinesAttributed checks that every line the writer produces for
// a failing target is what the exporter's error-log reader takes as
// nginx's: parsed as an upstream error with the reason the probe of that
// target gives, and attributed to that very target of the configuration
// confgen writes. The other lines must count as no upstream error.
func TestErrorLinesAttributed(t *testing.T) {
	var targets []farm.Target
	var ct []confgen.Target
	want := map[string]prober.Reason{}
	port := 20000
	for _, kind := range farm.Kinds {
		for _, mode := range []string{farm.ModeRefuse, farm.ModeHang} {
			port++
			ft := farm.Target{Kind: kind, Addr: "127.0.0.1:" + strconv.Itoa(port), Mode: mode}
			targets = append(targets, ft)
			ct = append(ct, confgen.Target{Kind: kind, Addr: ft.Addr})
			r := prober.ReasonConnectionRefused
			if mode == farm.ModeHang {
				switch kind {
				case farm.KindTCP:
					r = prober.ReasonConnectTimeout
				case farm.KindHTTPS:
					r = prober.ReasonTLSHandshakeTimeout
				default:
					r = prober.ReasonReadTimeout
				}
			}
			want[ft.Addr] = r
		}
	}
	conf, err := confgen.Write(t.TempDir(), ct, confgen.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := discovery.Load(context.Background(), discovery.Options{NginxConfig: conf})
	if err != nil {
		t.Fatal(err)
	}
	idx := errorlog.NewIndex(loaded.Set)
	now := time.Date(2026, 11, 27, 8, 14, 20, 0, time.Local)
	for i, ft := range targets {
		line := farm.AppendErrorLine(nil, now, 4242, uint64(i+1), confgen.Name(i), ft, "main.bench.test")
		if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("%q: want exactly one line", line)
		}
		var e errorlog.Entry
		errorlog.Parse(bytes.TrimSuffix(line, []byte("\n")), &e)
		if e.Kind != errorlog.KindUpstreamError || e.Level != errorlog.LevelError || e.Reason != want[ft.Addr] {
			t.Errorf("%s %s: %q parsed as kind %v level %v reason %q, want an upstream error at error level, %q",
				ft.Kind, ft.Mode, line, e.Kind, e.Level, e.Reason, want[ft.Addr])
			continue
		}
		if got := string(e.Time[:]); got != "2026/11/27 08:14:20" {
			t.Errorf("%q: time %q", line, got)
		}
		a := idx.Attribute(e.Protocol, e.Peer)
		if a.Target == nil || a.Target.Key.Address != ft.Addr || a.Target.Key.Upstream != confgen.Name(i) {
			t.Errorf("%s %s: %q attributed to %+v, want upstream %s address %s", ft.Kind, ft.Mode, line, a, confgen.Name(i), ft.Addr)
		}
	}
	for k := range 2 {
		line := farm.AppendOtherLine(nil, now, 4242, 99, k, "main.bench.test")
		var e errorlog.Entry
		errorlog.Parse(bytes.TrimSuffix(line, []byte("\n")), &e)
		if e.Kind != errorlog.KindOther {
			t.Errorf("%q parsed as kind %v, want other", line, e.Kind)
		}
	}
}

// TestLogWriterRatesAndRotation runs the writer briefly: it writes one
// line per failing target per interval (none for healthy ones) and one
// other line per 20 targets per interval, keeps every line whole across
// rotations, and leaves the rotated file beside the new one.
func TestLogWriterRatesAndRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "error.log")
	targets := []farm.Target{
		{Kind: farm.KindTCP, Addr: "127.0.0.1:20001", Mode: farm.ModeRefuse},
		{Kind: farm.KindHTTP, Addr: "127.0.0.1:20002", Mode: farm.ModeOK},
		{Kind: farm.KindHTTP, Addr: "127.0.0.1:20003", Mode: farm.ModeHang},
		{Kind: farm.KindFastCGI, Addr: "127.0.0.1:20004", Mode: farm.ModeRefuse},
	}
	// 36 healthy ones more: 40 targets, two other lines per interval.
	for i := range 36 {
		targets = append(targets, farm.Target{Kind: farm.KindHTTP, Addr: "127.0.0.1:" + strconv.Itoa(21000+i), Mode: farm.ModeOK})
	}
	w := &farm.LogWriter{Path: path, Targets: targets, Names: confgen.Name, Server: "main.bench.test",
		Interval: 200 * time.Millisecond, RotateEvery: time.Second}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- w.Run(stop) }()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	perAddr := map[string]int{}
	total, other := 0, 0
	for _, p := range []string{path + ".1", path} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatalf("after a rotation: %v", err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			n++
			var e errorlog.Entry
			errorlog.Parse(sc.Bytes(), &e)
			switch e.Kind {
			case errorlog.KindUpstreamError:
				for _, ft := range targets {
					if bytes.Contains(e.Peer, []byte(ft.Addr)) {
						perAddr[ft.Addr]++
					}
				}
			case errorlog.KindOther:
				other++
			default:
				t.Errorf("%s: %q parsed as kind %v", p, sc.Text(), e.Kind)
			}
		}
		f.Close()
		if n == 0 {
			t.Errorf("%s: empty", p)
		}
		total += n
	}
	// 1.5 s at two per 200 ms: about 15.
	if other < 10 || other > 16 {
		t.Errorf("%d other lines in 1.5 s at two per 200 ms", other)
	}
	// 1.5 s at one line per failing target per 200 ms: about 7 each.
	for _, ft := range targets {
		got := perAddr[ft.Addr]
		if ft.Mode == farm.ModeOK {
			if got != 0 {
				t.Errorf("healthy %s: %d lines", ft.Addr, got)
			}
			continue
		}
		if got < 5 || got > 8 {
			t.Errorf("failing %s: %d lines in 1.5 s at one per 200 ms", ft.Addr, got)
		}
	}
}
