package discovery

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nginx.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	conf := writeConf(t, `
events {}
http {
	server {
		location /py { uwsgi_pass suwsgi://127.0.0.1:3031; }
		location /php { fastcgi_pass unix:/run/php.sock; }
		location /x { proxy_pass http://$arg_host:80; }
	}
}`)
	loaded, err := Load(context.Background(), Options{NginxConfig: conf})
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Files) != 1 || loaded.Files[0] != conf {
		t.Errorf("Files = %v", loaded.Files)
	}
	if loaded.Set.Probed != 2 || loaded.Set.Dynamic != 1 {
		t.Errorf("probed %d dynamic %d, want 2 and 1", loaded.Set.Probed, loaded.Set.Dynamic)
	}
	var py *Target
	for _, tg := range loaded.Set.Targets {
		if tg.Server == "127.0.0.1:3031" {
			py = tg
		}
	}
	// suwsgi:// is uwsgi over TLS: labelled by its scheme and probed with
	// nginx's handshake (it was once probed in plain text).
	if py == nil || py.Protocol != "suwsgi" || py.Probe.Protocol != protocol.UWSGI || py.Probe.TLS == nil {
		t.Fatalf("suwsgi target: %+v", py)
	}
	if py.Logger() == nil || py.Probe.Logger != py.Logger() {
		t.Error("the target and its prober must share the target's logger")
	}
}

func TestLoadCancelled(t *testing.T) {
	conf := writeConf(t, "events {}\nhttp { server { location / { proxy_pass http://127.0.0.1:1; } } }")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, Options{NginxConfig: conf}); err == nil {
		t.Fatal("a cancelled load must not succeed: its lookups were cut short")
	}
}

// Arbitrary gives /probe exactly the target a configuration with that one
// *_pass would give: nginx's defaults come from one place.
func TestArbitraryMatchesConfiguration(t *testing.T) {
	tests := []struct {
		directive, arg, server, label string
	}{
		{"proxy_pass", "http://127.0.0.1:8080", "127.0.0.1:8080", "http"},
		{"proxy_pass", "https://127.0.0.1:8443", "127.0.0.1:8443", "https"},
		{"fastcgi_pass", "unix:/run/php/php-fpm.sock", "unix:/run/php/php-fpm.sock", "fastcgi"},
		{"uwsgi_pass", "suwsgi://[::1]:3031", "[::1]:3031", "suwsgi"},
		{"grpc_pass", "grpcs://127.0.0.1:50051", "127.0.0.1:50051", "grpcs"},
		{"memcached_pass", "127.0.0.1:11211", "127.0.0.1:11211", "memcached"},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			conf := writeConf(t, "events {}\nhttp { server { location / { "+tt.directive+" "+tt.arg+"; } } }")
			opts := Options{NginxConfig: conf}
			loaded, err := Load(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			want := loaded.Set.Targets[0]
			kind, _ := protocol.ParseLabel(tt.label)
			opts.Worker = want.Probe.Worker
			got, err := Arbitrary(tt.server, "", kind, opts)
			if err != nil {
				t.Fatal(err)
			}
			// Sources and loggers differ by construction.
			want.Sources, got.Sources = nil, nil
			want.base, got.base = nil, nil
			want.logger, got.logger = slog.Logger{}, slog.Logger{}
			wp, gp := *want.Probe, *got.Probe
			wp.Logger, gp.Logger = nil, nil
			want.Probe, got.Probe = nil, nil
			if !reflect.DeepEqual(want, got) || !reflect.DeepEqual(wp, gp) {
				t.Errorf("arbitrary target differs from the configured one:\n got %+v\n     %+v\nwant %+v\n     %+v", got, gp, want, wp)
			}
		})
	}
	if _, err := Arbitrary("127.0.0.1", "", protocol.Kind{Protocol: protocol.FastCGI}, Options{}); err == nil {
		t.Error("fastcgi without port: nginx says no port in upstream")
	}
	if _, err := Arbitrary("127.0.0.1:9000", "", protocol.Kind{Protocol: protocol.FastCGI, TLS: true}, Options{}); err == nil {
		t.Error("nginx has no FastCGI over TLS")
	}
}

// Every target gets its logger once, with the labels that say which
// server a line is about; the prober of the target logs through it.
func TestTargetLogger(t *testing.T) {
	conf := writeConf(t, "events {}\nhttp { upstream app { server 127.0.0.1:3000; } server { location / { proxy_pass http://app; } } }")
	var buf bytes.Buffer
	loaded, err := Load(context.Background(), Options{NginxConfig: conf, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tg := loaded.Set.Targets[0]
	if tg.Logger() != tg.Logger() {
		t.Error("the logger is built more than once")
	}
	tg.Probe.Logger.Info("hello")
	for _, want := range []string{"upstream=app", "server=127.0.0.1:3000", "address=127.0.0.1:3000", "protocol=http", "msg=hello"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %q lacks %q", buf.String(), want)
		}
	}
}
