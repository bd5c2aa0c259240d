package diagnose

import (
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// A silent UDP server is reported without a verdict: not healthy, not
// failing, and unlike the exporter's own limits it does not make the
// report unhealthy (nginx logs no error for it either).
func TestReportUnknownVerdict(t *testing.T) {
	tg := &discovery.Target{Key: discovery.Key{Upstream: "dns", Server: "127.0.0.1:53", Address: "127.0.0.1:53", Protocol: "udp"},
		Network: "udp", Probe: &prober.Peer{Network: "udp"}}
	l := &discovery.Loaded{Nginx: &nginxconf.Config{}, Set: &discovery.Set{Targets: []*discovery.Target{tg}, Probed: 1}}
	rep := report.New("nginx.conf", l, 0)
	rep.AddResults([]scheduler.Status{{Target: tg, HasResult: true,
		Result: prober.Result{Inconclusive: prober.InconclusiveNoAnswer, Detail: "no answer and no ICMP error"}}})
	got := rep.Targets[0]
	if got.Verdict != VerdictInconclusive || got.Reason != "no_answer" || got.Success || got.Detail == "" || !strings.Contains(got.Hint, "UDP") {
		t.Errorf("target = %+v, want no verdict (no_answer) with its detail and hint", got)
	}
	if !rep.Healthy || rep.Summary.Inconclusive != 1 || rep.Summary.Failing != 0 || rep.Summary.Healthy != 0 {
		t.Errorf("report healthy=%v summary=%+v", rep.Healthy, rep.Summary)
	}
	var b strings.Builder
	writeTable(&b, rep, palette{})
	for _, want := range []string{"neither answered the probe's empty datagram", "1 without a verdict", "No primary server is failing."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "Every primary server is healthy") {
		t.Errorf("a server without a verdict is not healthy:\n%s", b.String())
	}
}

// A refused UDP server is one with no socket bound: the hint names the
// UDP listing, and a stale unix datagram socket gets the unix advice.
func TestStreamHints(t *testing.T) {
	if h := Hint(prober.ReasonConnectionRefused, "udp", "udp"); !strings.Contains(h, "ss -lunp") {
		t.Errorf("udp refused hint: %q", h)
	}
	if h := Hint(prober.ReasonConnectionRefused, "tcp", "tcp"); !strings.Contains(h, "ss -ltnp") {
		t.Errorf("tcp refused hint: %q", h)
	}
	if h := Hint(prober.ReasonConnectionRefused, "udp", "unixgram"); !strings.Contains(h, "stale socket") {
		t.Errorf("unixgram refused hint: %q", h)
	}
}
