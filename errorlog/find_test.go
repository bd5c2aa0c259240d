package errorlog

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
)

func TestFind(t *testing.T) {
	logs := []nginxconf.ErrorLog{
		{Target: "/var/log/nginx/main.log", Path: "/var/log/nginx/main.log", Context: "main"},
		{Target: "stderr", Context: "http", Source: "nginx.conf:5"},
		{Target: "memory:32m", Context: "server", Source: "nginx.conf:9"},
		{Target: "syslog:server=unix:/run/log.sock,nohostname", Context: "server", Source: "nginx.conf:10"},
		{Target: "syslog:server=10.0.0.1:514", Context: "server", Source: "nginx.conf:11"},
		{Target: "/var/log/nginx/app.log", Path: "/var/log/nginx/app.log", Context: "location"},
		{Target: "/var/log/nginx/app.log", Path: "/var/log/nginx/app.log", Context: "location"},
	}
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, nil))
	cases := []struct {
		name string
		logs []nginxconf.ErrorLog
		opts FindOptions
		want []string
		// said: what the log must say about the targets not read.
		said []string
	}{
		{"every file once, others named", logs, FindOptions{FromConfig: true},
			[]string{"/var/log/nginx/main.log", "/var/log/nginx/app.log"},
			[]string{"written to stderr", "memory:32m", "syslog:server=unix:/run/log.sock", "syslog:server=10.0.0.1:514"}},
		{"the receiver's socket is read through it", logs, FindOptions{FromConfig: true, SyslogSocket: "/run/log.sock"},
			[]string{"/var/log/nginx/main.log", "/var/log/nginx/app.log"},
			[]string{"syslog:server=10.0.0.1:514"}},
		{"nginx's default without main or http error_log", logs[5:], FindOptions{FromConfig: true, Paths: []string{"/extra.log"}},
			[]string{"/var/log/nginx/app.log", DefaultPath, "/extra.log"}, nil},
		{"only the given paths", logs, FindOptions{Paths: []string{"/a.log", "/a.log", "/b/../b.log"}},
			[]string{"/a.log", "/b.log"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out.Reset()
			got := Find(tc.logs, tc.opts, logger)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Find = %q, want %q", got, tc.want)
			}
			for _, s := range tc.said {
				if !strings.Contains(out.String(), s) {
					t.Errorf("log does not mention %q:\n%s", s, out.String())
				}
			}
			if tc.opts.SyslogSocket != "" && strings.Contains(out.String(), "unix:/run/log.sock") {
				t.Errorf("the receiver's own target was reported as not read:\n%s", out.String())
			}
		})
	}
}
