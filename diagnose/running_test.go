package diagnose

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/loadstate"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

// TestNginxSection: each outage in plain words, with the command that
// fixes it; unknown stays unknown; an invisible nginx is no problem.
func TestNginxSection(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	n := NginxSection(loadstate.Result{
		Up: true, Known: true, LastLoad: at,
		Pending:        []loadstate.PendingFile{{Path: "/etc/nginx/conf.d/app.conf", Kind: loadstate.KindConfig, Change: "modified"}},
		PendingChanges: []string{"adds server b:80 to upstream app (http)"},
		WouldFail:      []loadstate.Failure{{Reason: loadstate.ReasonHostNotFound, Message: `host not found in upstream "gone:80"`}},
		Servers: []loadstate.ServerAddresses{
			{Upstream: "app", Server: "app:3000", Nginx: []string{"10.0.0.5"}, Now: []string{"10.0.0.7"}, Source: loadstate.SourceLoad, Known: true, Stale: true},
			{Upstream: "ok", Server: "ok:80", Nginx: []string{"10.0.0.1"}, Now: []string{"10.0.0.1"}, Source: loadstate.SourceLoad, Known: true},
			{Upstream: "old", Server: "old:80", Source: loadstate.SourceUnknown},
		},
	})
	var b strings.Builder
	writeNginx(&b, n, palette{})
	out := b.String()
	for _, want := range []string{
		"nginx still dials 10.0.0.5 for app:3000; DNS now answers 10.0.0.7; reload nginx: nginx -t && nginx -s reload",
		"/etc/nginx/conf.d/app.conf (modified)",
		"a reload adds server b:80 to upstream app (http)",
		`the next reload or restart of nginx would fail: nginx: [emerg] host not found in upstream "gone:80"`,
		"unknown which addresses nginx dials for old:80",
		"last loaded its configuration at 2026-11-27T10:00:00Z",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ok:80") {
		t.Errorf("a server that is not stale is reported:\n%s", out)
	}
	if !n.Problems() || len(n.Stale) != 1 {
		t.Errorf("problems() = %v, stale %v", n.Problems(), n.Stale)
	}

	hidden := NginxSection(loadstate.Result{FindErr: errors.Join(nginxproc.ErrNoAccess)})
	if hidden.Problems() || !strings.Contains(hidden.Error, "cannot see nginx's processes") {
		t.Errorf("hidden nginx: %+v", hidden)
	}
	gone := NginxSection(loadstate.Result{
		Up: true, Known: true, LastLoad: at,
		Servers: []loadstate.ServerAddresses{{Upstream: "app", Server: "app:3000", Nginx: []string{"10.0.0.5"}, NowErr: &net.DNSError{Err: "no such host", Name: "app", IsNotFound: true}, Source: loadstate.SourceLoad, Known: true, Stale: true}},
	})
	if len(gone.Messages) != 1 || !strings.Contains(gone.Messages[0], "DNS now answers no address") || !strings.Contains(gone.Messages[0], "fix DNS or the server line first") {
		t.Errorf("name gone: %q", gone.Messages)
	}
}
