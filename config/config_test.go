package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

const sample = `
defaults:
  http: {method: GET, path: /, expect_status: [], headers: {X-Probe: "1", X-Env: prod}}
upstreams:
  - upstream: backend
    http: {method: HEAD, path: /healthz, expect_status: [200, 204], headers: {x-env: test}}
    fastcgi: {ping_path: /ping}
  - upstream: unix:/run/php/php8.2-fpm.sock
    fastcgi: {ping_path: /fpm-ping}
`

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "probe.yml")
	if err := os.WriteFile(path, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h, f := c.ProbeSettings("backend")
	want := HTTPOverrides{Method: "HEAD", Path: "/healthz", ExpectStatus: []int{200, 204},
		Headers: map[string]string{"X-Probe": "1", "x-env": "test"}}
	if !reflect.DeepEqual(h, want) || f.PingPath != "/ping" {
		t.Errorf("backend: %+v %+v", h, f)
	}
	h, f = c.ProbeSettings("other")
	if h.Method != "GET" || h.Path != "/" || len(h.Headers) != 2 || f.PingPath != "" {
		t.Errorf("other: %+v %+v", h, f)
	}
	if _, f = c.ProbeSettings("unix:/run/php/php8.2-fpm.sock"); f.PingPath != "/fpm-ping" {
		t.Errorf("fpm: %+v", f)
	}

	var s prober.HTTPSettings
	h, _ = c.ProbeSettings("backend")
	h.Apply(&s)
	if s.Method != "HEAD" || s.Path != "/healthz" || !reflect.DeepEqual(s.Headers, [][2]string{{"X-Probe", "1"}, {"x-env", "test"}}) {
		t.Errorf("applied: %+v", s)
	}
}

func TestNilConfig(t *testing.T) {
	var c *Config
	h, f := c.ProbeSettings("any")
	if !reflect.DeepEqual(h, HTTPOverrides{}) || f != (FastCGIOverrides{}) {
		t.Errorf("nil config gave %+v %+v", h, f)
	}
	c, err := Parse(nil)
	if err != nil || c == nil {
		t.Fatalf("empty document: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	tests := map[string]string{
		"upstreams:\n  - upstream: a\n    htp: {}\n":                           "field htp not found",
		"defaults:\n  http: {metod: GET}\n":                                    "field metod not found",
		"upstreams:\n  - http: {}\n":                                           "upstreams[0].upstream",
		"upstreams:\n  - upstream: a\n  - upstream: a\n":                       "upstreams[1].upstream",
		"defaults:\n  http: {method: \"G T\"}\n":                               "defaults.http.method",
		"defaults:\n  http: {path: healthz}\n":                                 "defaults.http.path",
		"defaults:\n  http: {path: \"/a b\"}\n":                                "defaults.http.path",
		"upstreams:\n  - upstream: a\n    http: {expect_status: [200, 700]}\n": "upstreams[0].http.expect_status[1]",
		"defaults:\n  http: {headers: {Host: x}}\n":                            "cannot be overridden",
		"defaults:\n  http: {headers: {\"X Y\": x}}\n":                         "not a valid header name",
		"defaults:\n  http: {headers: {X-A: \"secret\\r\\nEvil: 1\"}}\n":       "defaults.http.headers.X-A",
		"defaults:\n  fastcgi: {ping_path: ping}\n":                            "defaults.fastcgi.ping_path",
		"defaults: {}\n---\ndefaults: {}\n":                                    "more than one YAML document",
	}
	for in, want := range tests {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error repeats a header value: %v", err)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yml")); err == nil {
		t.Error("missing file accepted")
	}
}
