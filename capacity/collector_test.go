package capacity

import (
	"bytes"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// fixedMonitor is a monitor whose published state is set by the test:
// every state the collector distinguishes, without reading the machine.
func fixedMonitor(t *testing.T) *Monitor {
	t.Helper()
	mk := func(server string) *discovery.Target {
		tg, err := discovery.Arbitrary(server, "", protocol.Kind{Protocol: protocol.FastCGI}, discovery.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	full, idle, down, unknown, noStatus := mk("unix:/run/php/a.sock"), mk("127.0.0.1:9000"), mk("unix:/run/gone.sock"), mk(`unix:/run/q"uote.sock`), mk("unix:/run/php/b.sock")
	start := time.Unix(1700000000, 500000000)
	pool := &Pool{Name: "web", PM: "static", MaxChildren: 4, StatusPath: "/status"}
	m := New(Options{})
	m.publish([]*discovery.Target{full, idle, down, unknown, noStatus}, []State{
		{Listen: Listening, Listener: Listener{Queue: 5, Limit: 5}, Owner: &Process{Start: start}, Restarts: 2,
			OOMKills: 1, OOMKnown: true, Pool: pool, StatusCause: CausePoolFull, Saturated: true, SaturationKnown: true},
		{Listen: Listening, Listener: Listener{Queue: 0, Limit: 511}, Owner: &Process{Start: start}, OOMKnown: true,
			Pool: pool, Status: &FPMStatus{ActiveProcesses: 2, IdleProcesses: 2, MaxChildrenReached: 3, SlowRequests: 7}, statusSelf: true, SaturationKnown: true},
		{Listen: NotListening, Restarts: 1},
		{Listen: ListenUnknown},
		{Listen: Listening, Listener: Listener{Limit: 8}, Pool: &Pool{Name: "api", PM: "ondemand"}, SaturationKnown: true},
	})
	m.netstat, m.nsOK = NetStat{ListenOverflows: 12, ListenDrops: 15}, true
	return m
}

// publish sets the monitor's published state: states[i] of targets[i].
func (m *Monitor) publish(targets []*discovery.Target, states []State) {
	l := newLayout(targets)
	v := &view{}
	v.reset(l)
	for i := range states {
		var owner uint32
		if states[i].Owner != nil {
			v.procs = append(v.procs, states[i].Owner)
			owner = uint32(len(v.procs))
		}
		v.put(i, &states[i], owner)
	}
	m.layout, m.cur = l, v
}

func TestCollectorLint(t *testing.T) {
	c := NewCollector(fixedMonitor(t))
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestTextWriterMatchesCollector holds the fast page equal to the
// registry's rendering of the same state.
func TestTextWriterMatchesCollector(t *testing.T) {
	m := fixedMonitor(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(m))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	enc := expfmt.NewEncoder(&want, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		enc.Encode(mf)
	}
	var got bytes.Buffer
	if _, err := NewTextWriter(m).WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	gotMF, err := p.TextToMetricFamilies(bytes.NewReader(got.Bytes()))
	if err != nil {
		t.Fatalf("TextWriter page does not parse: %v\n%s", err, got.String())
	}
	p2 := expfmt.NewTextParser(model.UTF8Validation)
	wantMF, err := p2.TextToMetricFamilies(bytes.NewReader(want.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// Series order and label order are the only freedom of the format;
	// the text writer also writes a header for families without series,
	// which the registry drops.
	for name, g := range gotMF {
		if len(g.Metric) == 0 {
			delete(gotMF, name)
		}
	}
	if len(gotMF) != len(wantMF) {
		t.Errorf("text writer has %d families with series, the registry %d", len(gotMF), len(wantMF))
	}
	for name, w := range wantMF {
		if g, ok := gotMF[name]; !ok || normalize(g) != normalize(w) {
			t.Errorf("%s differs:\nregistry:\n%s\ntext writer:\n%s", name, normalize(w), normalize(g))
		}
	}
	for _, line := range []string{
		`nginx_upstream_backend_saturated{upstream="unix:/run/php/a.sock",server="unix:/run/php/a.sock",address="unix:/run/php/a.sock",protocol="fastcgi"} 1`,
		`nginx_upstream_phpfpm_status_failure{upstream="unix:/run/php/a.sock",server="unix:/run/php/a.sock",address="unix:/run/php/a.sock",protocol="fastcgi",cause="pool_full"} 1`,
		`nginx_upstream_phpfpm_processes{upstream="127.0.0.1:9000",server="127.0.0.1:9000",address="127.0.0.1:9000",protocol="fastcgi",state="active"} 1`,
		`nginx_upstream_backend_listener_state{upstream="unix:/run/q\"uote.sock",server="unix:/run/q\"uote.sock",address="unix:/run/q\"uote.sock",protocol="fastcgi",state="unknown"} 1`,
		`nginx_upstream_netns_listen_overflows_total 12`,
		`nginx_upstream_backend_process_start_time_seconds{upstream="unix:/run/php/a.sock",server="unix:/run/php/a.sock",address="unix:/run/php/a.sock",protocol="fastcgi"} 1.7000000005e+09`,
	} {
		if !strings.Contains(got.String(), line+"\n") {
			t.Errorf("page lacks %s", line)
		}
	}
	for _, absent := range []string{
		`nginx_upstream_backend_saturated{upstream="unix:/run/gone.sock"`,
		`nginx_upstream_backend_restarts_total{upstream="unix:/run/q\"uote.sock"`,
		`nginx_upstream_phpfpm_status_up{upstream="unix:/run/php/b.sock"`,
		`nginx_upstream_backend_oom_kills_total{upstream="unix:/run/php/b.sock"`,
	} {
		if strings.Contains(got.String(), absent) {
			t.Errorf("page has %s…", absent)
		}
	}
}

// normalize renders a family with its series and labels sorted.
func normalize(mf *dto.MetricFamily) string {
	if mf == nil {
		return ""
	}
	var lines []string
	for _, m := range mf.Metric {
		sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		lines = append(lines, m.String())
	}
	sort.Strings(lines)
	return mf.GetName() + " " + mf.GetHelp() + " " + mf.GetType().String() + "\n" + strings.Join(lines, "\n")
}
