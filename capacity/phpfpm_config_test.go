package capacity

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/cgroupfs"
)

func TestLoadFPMPools(t *testing.T) {
	dir, err := filepath.Abs("testdata/fpm")
	if err != nil {
		t.Fatal(err)
	}
	// Relative includes resolve against the prefix (php-fpm -p).
	pools, err := loadFPMPools(filepath.Join(dir, "php-fpm.conf"), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pool{
		{Name: "api", Listen: "127.0.0.1:9000", PM: "static", MaxChildren: 12, StatusPath: "/fpm-status", StatusListen: "/run/php/api-status.sock"},
		{Name: "any", Listen: "9100", PM: "ondemand", MaxChildren: 3},
		{Name: "www", Listen: "/run/php/php8.2-fpm-www.sock", PM: "dynamic", MaxChildren: 5, Backlog: 1024, StatusPath: "/status"},
	}
	if len(pools) != len(want) {
		t.Fatalf("pools: %+v", pools)
	}
	for i := range want {
		if pools[i] != want[i] {
			t.Errorf("pool %d: %+v, want %+v", i, pools[i], want[i])
		}
	}

	for _, tc := range []struct {
		pool, network, addr string
		want                bool
	}{
		{"www", "unix", "/run/php/php8.2-fpm-www.sock", true},
		{"www", "unix", "/run/php/../php/php8.2-fpm-www.sock", true},
		{"www", "unix", "/run/php/other.sock", false},
		{"api", "tcp", "127.0.0.1:9000", true},
		{"api", "tcp", "127.0.0.2:9000", false},
		{"api", "tcp", "127.0.0.1:9001", false},
		{"any", "tcp", "10.1.2.3:9100", true},
		{"any", "unix", "/9100", false},
	} {
		var p *Pool
		for i := range pools {
			if pools[i].Name == tc.pool {
				p = &pools[i]
			}
		}
		if got := p.listensOn(tc.network, tc.addr); got != tc.want {
			t.Errorf("pool %s listens on %s %s: %v, want %v", tc.pool, tc.network, tc.addr, got, tc.want)
		}
	}
}

func TestLoadFPMPoolsBounds(t *testing.T) {
	dir := t.TempDir()
	// A file that includes itself would recurse forever.
	self := filepath.Join(dir, "loop.conf")
	os.WriteFile(self, []byte("include = "+self+"\n"), 0o644)
	if _, err := loadFPMPools(self, dir); err == nil {
		t.Error("an include loop was read without error")
	}
	big := filepath.Join(dir, "big.conf")
	os.WriteFile(big, bytes.Repeat([]byte("; comment line\n"), maxFPMFileSize/14), 0o644)
	if _, err := loadFPMPools(big, dir); err == nil {
		t.Error("a configuration over the size bound was read")
	}
	if _, err := loadFPMPools(filepath.Join(dir, "missing.conf"), dir); err == nil {
		t.Error("a missing file was read")
	}
}

func TestIsPHPFPM(t *testing.T) {
	for _, tc := range []struct {
		cmdline, config string
		ok              bool
	}{
		{"php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)", "/etc/php/8.2/fpm/php-fpm.conf", true},
		{"php-fpm8.2: master process (/etc/php/8.2/fpm/php-fpm.conf)   ", "/etc/php/8.2/fpm/php-fpm.conf", true},
		{"php-fpm: pool www", "", true},
		{"/usr/sbin/php-fpm8.2 -F -y /tmp/x.conf", "/tmp/x.conf", true},
		{"php-fpm8.2 --fpm-config=/etc/f.conf", "/etc/f.conf", true},
		{"gunicorn: master [app]", "", false},
	} {
		config, ok := isPHPFPM(tc.cmdline)
		if config != tc.config || ok != tc.ok {
			t.Errorf("%q: %q %v", tc.cmdline, config, ok)
		}
	}
}

func TestParseFPMStatus(t *testing.T) {
	out := []byte("X-Powered-By: PHP/8.2\r\nContent-type: application/json\r\n\r\n" +
		`{"pool":"www","process manager":"static","start time":1700000000,"accepted conn":12,"listen queue":3,"max listen queue":4,"listen queue len":0,"idle processes":0,"active processes":2,"total processes":2,"max active processes":2,"max children reached":5,"slow requests":1}`)
	s, err := parseFPMStatus(out)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pool != "www" || s.ListenQueue != 3 || s.ActiveProcesses != 2 || s.MaxChildrenReached != 5 || s.SlowRequests != 1 {
		t.Errorf("%+v", s)
	}
	if _, err := parseFPMStatus([]byte("Status: 404 Not Found\r\n\r\nFile not found.")); err == nil {
		t.Error("a 404 was read as a status page")
	}
	if _, err := parseFPMStatus([]byte("Content-type: text/html\r\n\r\n<html>")); err == nil {
		t.Error("HTML was read as a status page")
	}
}

func TestParseNetStat(t *testing.T) {
	in := "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPLostRetransmit\nTcpExt: 0 17 20 3\nIpExt: InNoRoutes\nIpExt: 0\n"
	ns, err := parseNetStat(bytes.NewReader([]byte(in)))
	if err != nil || ns.ListenOverflows != 17 || ns.ListenDrops != 20 {
		t.Errorf("%+v %v", ns, err)
	}
	if _, err := parseNetStat(bytes.NewReader([]byte("IpExt: A\nIpExt: 1\n"))); err == nil {
		t.Error("no TcpExt read as zero counters")
	}
	if _, err := parseNetStat(bytes.NewReader([]byte("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n"))); err == nil {
		t.Error("a short value line was accepted")
	}
}

func TestNearlyFull(t *testing.T) {
	for _, tc := range []struct {
		q, limit uint32
		want     bool
	}{
		{0, 0, false}, {0, 1, false}, {1, 1, true}, {2, 1, true}, {3, 4, false}, {4, 4, true},
		{459, 511, false}, {460, 511, true}, {9, 10, true}, {8, 10, false},
	} {
		if got := nearlyFull(tc.q, tc.limit); got != tc.want {
			t.Errorf("%d/%d: %v", tc.q, tc.limit, got)
		}
	}
}

func FuzzParseFPMStatus(f *testing.F) {
	f.Add([]byte("Content-type: application/json\r\n\r\n{\"pool\":\"www\",\"active processes\":1}"))
	f.Add([]byte("Status: 500\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseFPMStatus(b) })
}

func FuzzParseNetStat(f *testing.F) {
	f.Add([]byte("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseNetStat(bytes.NewReader(b)) })
}

// FuzzParseDiag feeds arbitrary bytes to the unix sock_diag message parser
// (the TCP one is internal/sockdiag's, fuzzed there):
// the kernel's answers are trusted, but a parser must not panic on any.
func FuzzParseDiag(f *testing.F) {
	f.Add(append(make([]byte, sizeofUnixDiagMsg), 8, 0, 0, 0, '/', 'a', 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseUnixDiagMsg(b)
	})
}

func FuzzCgroupFiles(f *testing.F) {
	f.Add([]byte("0::/system.slice/php8.2-fpm.service\n4:memory:/x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseOOMKill(b)
		oomRef(cgroupfs.Mounts{V2: cgroupfs.Mount{Dir: "/nonexistent-v2"}, V1Memory: cgroupfs.Mount{Dir: "/nonexistent-v1"}}, b)
	})
}

func TestPreferOwner(t *testing.T) {
	starts := map[int]uint64{1: 0, 100: 50, 200: 60, 300: 50}
	start := func(pid int) uint64 { return starts[pid] }
	for _, tc := range []struct {
		old, pid int
		want     bool
	}{
		{100, 200, false}, // the master started first
		{200, 100, true},
		{300, 100, true}, // same start: lower pid
		{1, 100, true},   // systemd's activated socket: the service owns it
		{100, 1, false},
	} {
		if got := preferOwner(tc.old, tc.pid, start); got != tc.want {
			t.Errorf("old %d, new %d: %v", tc.old, tc.pid, got)
		}
	}
}
