package nginxconf

import (
	"math"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in    string
		isSec bool
		want  time.Duration
		ok    bool
	}{
		{"60s", false, 60 * time.Second, true},
		{"60", false, 60 * time.Second, true},
		{"500ms", false, 500 * time.Millisecond, true},
		{"1m", false, time.Minute, true},
		{"1h30s", false, time.Hour + 30*time.Second, true},
		{"1h 30m", false, 90 * time.Minute, true},
		{"1m30", false, 90 * time.Second, true},
		{"1d", false, 24 * time.Hour, true},
		{"1w", false, 7 * 24 * time.Hour, true},
		{"1s500ms", false, 1500 * time.Millisecond, true},
		{"0", false, 0, true},
		{"1M", false, 0, false},    // months only for second-precision values
		{"1y", false, 0, false},    // same
		{"30s1m", false, 0, false}, // units must decrease
		{"1x", false, 0, false},
		{"", false, 0, false},
		{"s", false, 0, false},
		{"-1s", false, 0, false},
		{"10", true, 10 * time.Second, true},
		{"30s", true, 30 * time.Second, true},
		{"1M", true, 30 * 24 * time.Hour, true},
		{"1y", true, 365 * 24 * time.Hour, true},
		{"500ms", true, 0, false},
		{"99999999999999999999", false, 0, false},
		{"9223372036854775s", false, time.Duration(math.MaxInt64), true}, // nginx accepts; clamped
		{"9223372036854776s", false, 0, false},
		{"9223372036854775", true, time.Duration(math.MaxInt64), true},
	}
	for _, tt := range tests {
		got, ok := parseTime(tt.in, tt.isSec)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseTime(%q, %v) = %v, %v; want %v, %v", tt.in, tt.isSec, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"4096", 4096, true},
		{"4k", 4096, true},
		{"8K", 8192, true},
		{"1m", 1 << 20, true},
		{"2M", 2 << 20, true},
		{"1g", 0, false}, // sizes take k and m only
		{"k", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5k", 0, false},
		{"99999999999999999999k", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSize(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAddressPart(t *testing.T) {
	tests := []struct {
		in      string
		uriPart bool
		want    string
	}{
		{"127.0.0.1:8080/uri", true, "127.0.0.1:8080"},
		{"host?a=1", true, "host"},
		{"app:8080$request_uri", true, "app:8080"},
		{"app${uri}", true, "app"},
		{"app$is_args$args", true, "app"},
		{"$backend$request_uri", true, "$backend"},
		{"unix:/run/a.sock:/uri", true, "unix:/run/a.sock"},
		{"unix:/run/a.sock", true, "unix:/run/a.sock"},
		{"unix:/run/a:b.sock", false, "unix:/run/a:b.sock"},
		{"127.0.0.1:9000", false, "127.0.0.1:9000"},
	}
	for _, tt := range tests {
		if got := addressPart(tt.in, tt.uriPart); got != tt.want {
			t.Errorf("addressPart(%q, %v) = %q, want %q", tt.in, tt.uriPart, got, tt.want)
		}
	}
}

// TestHugeTimeoutSaturates: a timeout nginx accepts but a Duration cannot
// hold is the largest Duration, never a wrapped negative one.
func TestHugeTimeoutSaturates(t *testing.T) {
	main := "/etc/nginx/nginx.conf"
	cfg, err := Load(main, LoadOptions{PageSize: 4096, FS: memFS{main: `events {}
http {
    grpc_read_timeout 1071906480m;
    grpc_connect_timeout 106751d;
    server { location / { grpc_send_timeout "15250w 1d 23h 47m 16s 854ms"; grpc_pass 127.0.0.1:9; } }
}
`}})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Servers[0].Settings
	if s.ReadTimeout != time.Duration(math.MaxInt64) {
		t.Errorf("read timeout = %v, want the largest Duration", s.ReadTimeout)
	}
	if want := 106751 * 24 * time.Hour; s.ConnectTimeout != want {
		t.Errorf("connect timeout = %v, want %v", s.ConnectTimeout, want)
	}
	// Every unit at once, just below the largest Duration.
	if want := 106751*24*time.Hour + 23*time.Hour + 47*time.Minute + 16854*time.Millisecond; s.SendTimeout != want {
		t.Errorf("send timeout = %v, want %v", s.SendTimeout, want)
	}
}
