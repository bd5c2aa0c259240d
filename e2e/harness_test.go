package e2e

import (
	"slices"
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	const text = `# HELP nginx_upstream_probe_success 1 when ...
# TYPE nginx_upstream_probe_success gauge
nginx_upstream_probe_success{address="unix:/tmp/a \"b\".sock",protocol="http",server="unix:/tmp/a \"b\".sock",upstream="x"} 0
nginx_upstream_probe_failure_reason{address="1.2.3.4:80",protocol="http",reason="connection_refused",server="1.2.3.4:80",upstream="u"} 1
nginx_upstream_probe_runs_total{address="1.2.3.4:80",protocol="http",server="1.2.3.4:80",upstream="u"} 3
nginx_upstream_probe_success{address="1.2.3.4:80",protocol="http",server="1.2.3.4:80",upstream="u"} 0
go_goroutines 12
`
	all, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 {
		t.Fatalf("parsed %d samples, want 5", len(all))
	}
	v := verdicts(all)
	if got := v["1.2.3.4:80 1.2.3.4:80"]; got.runs != 3 || got.success != 0 || got.reason() != "connection_refused" {
		t.Errorf("verdict = %v", got)
	}
	if _, ok := v[`unix:/tmp/a "b".sock unix:/tmp/a "b".sock`]; !ok {
		t.Errorf("escaped label value not decoded: %v", v)
	}
}

func TestLinesFor(t *testing.T) {
	lines := []string{
		`[error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream, upstream: "http://127.0.0.1:4000/"`,
		`[error] 1#1: *2 connect() failed (111: Connection refused) while connecting to upstream, upstream: "http://127.0.0.1:400/"`,
	}
	if got := linesFor(lines, "127.0.0.1:400"); !slices.Equal(got, lines[1:]) {
		t.Errorf("linesFor(127.0.0.1:400) = %q, want only the :400 line", got)
	}
	if got := message(lines[0]); !strings.HasPrefix(got, "connect() failed") {
		t.Errorf("message() = %q", got)
	}
}
