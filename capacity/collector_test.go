package capacity

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
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

// manyMonitor is a monitor whose published state has n targets in every
// state fixedMonitor has, in turn, and some not local.
func manyMonitor(t *testing.T, n int) *Monitor {
	t.Helper()
	fixed := fixedMonitor(t)
	var targets []*discovery.Target
	var states []State
	for i := range n {
		k := i % (len(fixed.cur.layout.targets) + 1)
		server := fmt.Sprintf("unix:/run/%d/q\"%d.sock", i, k)
		if k%2 == 0 {
			server = fmt.Sprintf("127.0.%d.%d:9000", i/250, i%250)
		}
		tg, err := discovery.Arbitrary(server, "", protocol.Kind{Protocol: protocol.FastCGI}, discovery.Options{})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
		if k == len(fixed.cur.layout.targets) {
			states = append(states, State{}) // not local: no series
			continue
		}
		st, _ := fixed.cur.state(k)
		if st.Pool != nil {
			st.Pool = &Pool{Name: fmt.Sprintf("pool\\%d", i), PM: st.Pool.PM, MaxChildren: st.Pool.MaxChildren, StatusPath: st.Pool.StatusPath}
		}
		st.Listener.Queue = uint32(i % 7)
		states = append(states, st)
	}
	m := New(Options{})
	m.publish(targets, states)
	for i := range states {
		if states[i] == (State{}) {
			m.cur.slots[i] = slot{}
		}
	}
	m.netstat, m.nsOK = fixed.netstat, true
	return m
}

// emptySource is a collector.Source without targets.
type emptySource struct{}

func (emptySource) Each(func(*scheduler.Status)) {}

// TestTextWriterInParts: served by collector.Handler, in ranges rendered
// by several goroutines, the families are byte for byte those WriteTo
// writes, in every scrape (the later ones cut by the sizes of the
// earlier), plain and gzipped; the view is held only while a scrape runs.
func TestTextWriterInParts(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := manyMonitor(t, 5000)
	tw := NewTextWriter(m)
	var want bytes.Buffer
	if _, err := tw.WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	if want.Len() < 1<<20 {
		t.Fatalf("page of %d bytes: too small for ranges", want.Len())
	}
	for _, series := range []string{
		`nginx_upstream_phpfpm_pool_info{upstream="unix:/run/1/q\"1.sock",server="unix:/run/1/q\"1.sock",address="unix:/run/1/q\"1.sock",protocol="fastcgi",pool="pool\\1",pm="static"} 1`,
		`nginx_upstream_backend_listener_state{upstream="127.0.0.2:9000",server="127.0.0.2:9000",address="127.0.0.2:9000",protocol="fastcgi",state="listening"} 0`,
	} {
		if !strings.Contains(want.String(), series+"\n") {
			t.Errorf("page lacks %s", series)
		}
	}
	// The probe families' headers, then the capacity families twice.
	rec := httptest.NewRecorder()
	collector.Handler(prometheus.NewRegistry(), collector.NewTextWriter(emptySource{}), 1, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	page := append(append(rec.Body.Bytes(), want.Bytes()...), want.Bytes()...)
	h := collector.Handler(prometheus.NewRegistry(), collector.NewTextWriter(emptySource{}), 1, nil, NewTextWriter(m), tw)
	for scrape := range 3 {
		for _, gz := range []bool{false, true} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			if gz {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, page) {
				t.Fatalf("scrape %d, gzip %v: the page in parts (%d bytes) is not the one of WriteTo (%d)", scrape, gz, len(body), len(page))
			}
			if r := m.cur.readers.Load(); r != 0 {
				t.Fatalf("scrape %d: %d readers of the view after the scrape", scrape, r)
			}
		}
	}
	parts, done := tw.AppendParts(nil, 64<<10)
	if len(parts) < 2*len(families) {
		t.Errorf("%d parts for %d families of 1 MB at 64 KB", len(parts), len(families))
	}
	if r := m.cur.readers.Load(); r != 1 {
		t.Errorf("%d readers of the view while a scrape holds it, want 1", r)
	}
	done()
	if r := m.cur.readers.Load(); r != 0 {
		t.Errorf("%d readers of the view after done without any part", r)
	}
	// The last part done releases the view, before done.
	parts, done = tw.AppendParts(nil, 64<<10)
	for _, p := range parts {
		if err := p(io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if r := m.cur.readers.Load(); r != 0 {
		t.Errorf("%d readers of the view after every part", r)
	}
	done()
	if r := m.cur.readers.Load(); r != 0 {
		t.Errorf("%d readers of the view after done", r)
	}
}

// TestPoolOnlyFamilies: the families the text writer skips for plain
// slots have no series without a pool, and a state with a pool is never
// a plain slot; the label values written unescaped need none.
func TestPoolOnlyFamilies(t *testing.T) {
	st := State{Listen: Listening, Listener: Listener{Queue: 1, Limit: 2}, Owner: &Process{}, Restarts: 1, OOMKnown: true,
		Status: &FPMStatus{ActiveProcesses: 1}, StatusCause: CauseTimeout, SaturationKnown: true}
	withPool := st
	withPool.Pool = &Pool{Name: "p", PM: "static", MaxChildren: 1, StatusPath: "/s"}
	if withPool.fitsSlot() {
		t.Error("a state with a pool fits a plain slot")
	}
	pools := 0
	for i := range families {
		f := &families[i]
		if f.poolOnly {
			pools++
			f.values(&st, func(float64, string, string) { t.Errorf("%s: a series without a pool", f.name) })
		}
		if f.free {
			continue
		}
		for _, s := range []State{st, withPool, {Listen: NotListening}, {Listen: ListenUnknown}} {
			for _, c := range StatusCauses {
				s.StatusCause, s.Status = c, nil
				f.values(&s, func(_ float64, l1, l2 string) {
					for _, v := range []string{l1, l2} {
						if collector.EscapeLabelValue(v) != v {
							t.Errorf("%s: label value %q written unescaped", f.name, v)
						}
					}
				})
			}
		}
	}
	if pools != 8 {
		t.Errorf("%d families only for pools, want the 8 phpfpm ones", pools)
	}
}
