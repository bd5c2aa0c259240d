package loadstate

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"

	tu "github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeNginx is the running nginx as the test sets it.
type fakeNginx struct {
	mu     sync.Mutex
	snap   *nginxproc.Snapshot
	err    error
	worker int
}

func (f *fakeNginx) Find() (*nginxproc.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap, f.err
}

// load starts a generation at `at`.
func (f *fakeNginx) load(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = nil
	// Every generation has workers of its own.
	f.worker += 2
	f.snap = &nginxproc.Snapshot{Master: nginxproc.Process{PID: 100, Start: at},
		Current: []nginxproc.Process{{PID: 100 + f.worker, Start: at}, {PID: 101 + f.worker, Start: at}}}
}

// fakeDNS answers from a table; a missing name is NXDOMAIN.
type fakeDNS struct {
	mu sync.Mutex
	m  map[string][]string
}

func (d *fakeDNS) set(host string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[host] = ips
}

func (d *fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ips, ok := d.m[host]; ok && len(ips) > 0 {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

type peers []Peer

func (peers) Name() string { return "test" }
func (p peers) Peers(context.Context, *nginxproc.Snapshot) ([]Peer, error) {
	return p, nil
}

// scene is a configuration tree on disk with one static hostname
// upstream (app.test:3000) that talks TLS with a client certificate.
type scene struct {
	t       *testing.T
	dir     string
	conf    string
	include string
	cert    string
	nginx   *fakeNginx
	dns     *fakeDNS
	tracker *Tracker
	changed int
}

func newScene(t *testing.T, started time.Time, ev ...Evidence) *scene {
	dir := t.TempDir()
	s := &scene{t: t, dir: dir, conf: filepath.Join(dir, "nginx.conf"), include: filepath.Join(dir, "app.conf"), cert: filepath.Join(dir, "client.pem"),
		nginx: &fakeNginx{err: nginxproc.ErrNoPIDFile}, dns: &fakeDNS{m: map[string][]string{"app.test": {"127.0.0.2"}}}}
	s.write(s.conf, `events {}
http {
    include app.conf;
    server {
        listen 8080;
        location / { proxy_pass https://app; proxy_ssl_certificate client.pem; proxy_ssl_certificate_key client.pem; }
        location /lit { proxy_pass http://127.0.0.9:3000; }
    }
}
`)
	s.write(s.include, "upstream app { server app.test:3000; }\n")
	s.write(s.cert, clientPEM(t))
	s.tracker = New(Options{Finder: s.nginx, Resolver: s.dns, Evidence: ev, Started: started,
		AddressesChanged: func(context.Context) { s.changed++ }})
	s.observe()
	return s
}

func (s *scene) write(path, text string) {
	s.t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// observe loads the tree as reload.Manager does and tells the tracker.
func (s *scene) observe() {
	s.t.Helper()
	cfg, err := nginxconf.Load(s.conf, nginxconf.LoadOptions{})
	if err != nil {
		s.tracker.Observe(nil, err)
		return
	}
	s.tracker.Observe(&discovery.Loaded{Nginx: cfg}, nil)
}

func (s *scene) tick() Result {
	s.tracker.Tick(context.Background())
	return s.tracker.Result()
}

// metrics is the text of the named families, from the registry's
// collector and from ServersText, as /metrics serves them.
func (s *scene) metrics(names ...string) string {
	s.t.Helper()
	var b strings.Builder
	n, err := testutil.CollectAndFormat(NewCollector(s.tracker), expfmt.TypeTextPlain, names...)
	if err != nil {
		s.t.Fatal(err)
	}
	b.Write(n)
	var text strings.Builder
	if _, err := NewServersText(s.tracker).WriteTo(&text); err != nil {
		s.t.Fatal(err)
	}
	for _, fam := range strings.SplitAfter(text.String(), "# HELP ") {
		for _, name := range names {
			if strings.HasPrefix(fam, name+" ") {
				b.WriteString("# HELP " + strings.TrimSuffix(fam, "# HELP "))
			}
		}
	}
	return b.String()
}

func server(r Result, name string) ServerAddresses {
	for _, s := range r.Servers {
		if s.Server == name {
			return s
		}
	}
	return ServerAddresses{}
}

// TestStaleWitnessed: the exporter runs when nginx loads; the backend
// moves; nginx keeps dialling the old address until it reloads.
func TestStaleWitnessed(t *testing.T) {
	start := time.Now()
	s := newScene(t, start)
	if r := s.tick(); r.Up || r.Known {
		t.Fatalf("no nginx yet: %+v", r)
	}
	if got := s.metrics("nginx_upstream_dns_stale"); got != "" {
		t.Errorf("stale exported without knowing nginx's addresses:\n%s", got)
	}

	s.nginx.load(start.Add(time.Second))
	r := s.tick()
	if !r.Up || !r.Witnessed || r.Reloads != 0 {
		t.Fatalf("after nginx started: %+v", r)
	}
	if ips, ok := s.tracker.NginxAddresses("app.test"); !ok || len(ips) != 1 || ips[0] != "127.0.0.2" {
		t.Errorf("NginxAddresses = %v, %v", ips, ok)
	}
	if s.changed != 1 {
		t.Errorf("AddressesChanged called %d times, want 1", s.changed)
	}
	if sa := server(r, "app.test:3000"); !sa.Known || sa.Stale {
		t.Errorf("healthy: %+v", sa)
	}

	s.dns.set("app.test", "127.0.0.3")
	r = s.tick()
	if sa := server(r, "app.test:3000"); !sa.Known || !sa.Stale || sa.Nginx[0] != "127.0.0.2" || sa.Now[0] != "127.0.0.3" || sa.Source != SourceLoad {
		t.Errorf("after the move: %+v", sa)
	}
	if got := s.metrics("nginx_upstream_dns_stale"); !strings.Contains(got, `nginx_upstream_dns_stale{server="app.test:3000",upstream="app"} 1`) {
		t.Errorf("metric:\n%s", got)
	}
	if s.changed != 1 {
		t.Errorf("a DNS change must not move the probes off nginx's address: AddressesChanged called %d times", s.changed)
	}

	s.nginx.load(start.Add(2 * time.Second))
	r = s.tick()
	if sa := server(r, "app.test:3000"); !sa.Known || sa.Stale || r.Reloads != 1 || !r.LastLoad.Equal(start.Add(2*time.Second)) {
		t.Errorf("after the reload: %+v, reloads %d", sa, r.Reloads)
	}
	if ips, _ := s.tracker.NginxAddresses("app.test"); ips[0] != "127.0.0.3" || s.changed != 2 {
		t.Errorf("after the reload nginx dials %v (changed %d)", ips, s.changed)
	}
	if problems, err := testutil.CollectAndLint(NewCollector(s.tracker)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestStaleUnknownThenEvidence: nginx loaded before the exporter
// started: nothing is claimed until its workers are seen dialling an
// address; then only a stale address is claimed.
func TestStaleUnknownThenEvidence(t *testing.T) {
	start := time.Now()
	ev := &mutablePeers{}
	s := newScene(t, start, ev)
	s.nginx.load(start.Add(-time.Hour))
	s.dns.set("app.test", "127.0.0.3")
	r := s.tick()
	if !r.Up || r.Witnessed {
		t.Fatalf("%+v", r)
	}
	if sa := server(r, "app.test:3000"); sa.Known || sa.Source != SourceUnknown {
		t.Errorf("unknown must stay unknown: %+v", sa)
	}
	if _, ok := s.tracker.NginxAddresses("app.test"); ok {
		t.Error("NginxAddresses claims to know")
	}
	if got := s.metrics("nginx_upstream_dns_nginx_addresses_source"); !strings.Contains(got, `source="unknown"`) {
		t.Errorf("source not exported as unknown:\n%s", got)
	}

	// A worker connected to the current address proves nothing stale.
	ev.set(Peer{Addr: netip.MustParseAddrPort("127.0.0.3:3000")})
	if sa := server(s.tick(), "app.test:3000"); sa.Known || sa.Stale {
		t.Errorf("evidence of the current address: %+v", sa)
	}
	// One on the literal's port (another server) or a port no static
	// name uses is not attributed.
	ev.set(Peer{Addr: netip.MustParseAddrPort("127.0.0.9:3000")}, Peer{Addr: netip.MustParseAddrPort("127.0.0.7:4444")})
	if sa := server(s.tick(), "app.test:3000"); sa.Known {
		t.Errorf("unrelated peers attributed: %+v", sa)
	}
	// A worker trying the old address proves it.
	ev.set(Peer{Addr: netip.MustParseAddrPort("127.0.0.2:3000")})
	r = s.tick()
	if sa := server(r, "app.test:3000"); !sa.Known || !sa.Stale || sa.Source != SourceEvidence {
		t.Errorf("evidence of the old address: %+v", sa)
	}
	if ips, ok := s.tracker.NginxAddresses("app.test"); !ok || !contains(ips, "127.0.0.2") {
		t.Errorf("probes must follow the evidence: %v", ips)
	}
}

type mutablePeers struct {
	mu sync.Mutex
	p  []Peer
}

func (*mutablePeers) Name() string { return "test" }
func (m *mutablePeers) set(p ...Peer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p = p
}
func (m *mutablePeers) Peers(context.Context, *nginxproc.Snapshot) ([]Peer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Peer(nil), m.p...), nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestReloadPending: an edited include or a replaced certificate is
// pending until nginx reloads; a touch that changes nothing is not.
func TestReloadPending(t *testing.T) {
	start := time.Now()
	s := newScene(t, start)
	s.nginx.load(start.Add(time.Second))
	if r := s.tick(); len(r.Pending) != 0 {
		t.Fatalf("pending right after the load: %+v", r.Pending)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(s.include, later, later); err != nil {
		t.Fatal(err)
	}
	if r := s.tick(); len(r.Pending) != 0 {
		t.Errorf("a touch is not a change: %+v", r.Pending)
	}

	s.write(s.include, "upstream app { server app.test:3000; server other.test:3000; }\n")
	s.observe()
	r := s.tick()
	if len(r.Pending) != 1 || r.Pending[0].Path != s.include || r.Pending[0].Change != "modified" {
		t.Errorf("pending = %+v", r.Pending)
	}
	if len(r.PendingChanges) != 1 || !strings.Contains(r.PendingChanges[0], "adds server other.test:3000") {
		t.Errorf("changes = %q", r.PendingChanges)
	}
	if got := s.metrics("nginx_upstream_config_reload_pending"); !strings.Contains(got, "nginx_upstream_config_reload_pending 1") {
		t.Errorf("metric:\n%s", got)
	}

	s.nginx.load(start.Add(2 * time.Second))
	if r := s.tick(); len(r.Pending) != 0 {
		t.Errorf("pending after the reload: %+v", r.Pending)
	}

	s.write(s.cert, clientPEM(t))
	if r := s.tick(); len(r.Pending) != 1 || r.Pending[0].Path != s.cert || r.Pending[0].Kind != KindCertificate {
		t.Errorf("replaced certificate: %+v", r.Pending)
	}
}

// TestReloadPendingBeforeStart: the exporter started after nginx; a
// file modified after nginx's load is pending, an older one is not.
func TestReloadPendingBeforeStart(t *testing.T) {
	start := time.Now()
	s := newScene(t, start)
	old := start.Add(-time.Hour)
	for _, f := range []string{s.conf, s.include, s.cert} {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	s.nginx.load(start.Add(-time.Minute))
	if r := s.tick(); len(r.Pending) != 0 {
		t.Fatalf("nothing changed since nginx's load: %+v", r.Pending)
	}
	s2 := newScene(t, start) // files written now, after that load
	s2.nginx.load(start.Add(-time.Minute))
	if r := s2.tick(); len(r.Pending) != 3 {
		t.Errorf("files newer than nginx's load: %+v", r.Pending)
	}
}

// TestWouldFail: each reason, with nginx's message.
func TestWouldFail(t *testing.T) {
	start := time.Now()
	s := newScene(t, start)
	s.nginx.load(start.Add(time.Second))
	if r := s.tick(); len(r.WouldFail) != 0 {
		t.Fatalf("healthy: %+v", r.WouldFail)
	}
	s.dns.set("app.test")
	r := s.tick()
	if len(r.WouldFail) != 1 || r.WouldFail[0].Reason != ReasonHostNotFound || !strings.Contains(r.WouldFail[0].Message, `host not found in upstream "app.test:3000"`) {
		t.Errorf("NXDOMAIN: %+v", r.WouldFail)
	}
	s.dns.set("app.test", "127.0.0.2")

	if err := os.Remove(s.cert); err != nil {
		t.Fatal(err)
	}
	r = s.tick()
	if len(r.WouldFail) != 1 || r.WouldFail[0].Reason != ReasonFileMissing || !strings.Contains(r.WouldFail[0].Message, "cannot load certificate") {
		t.Errorf("missing certificate (and key, the same file): %+v", r.WouldFail)
	}
	s.write(s.cert, clientPEM(t))

	s.write(s.include, "upstream app { server app.test:3000;\n")
	s.observe()
	r = s.tick()
	if len(r.WouldFail) != 1 || r.WouldFail[0].Reason != ReasonParseError || !strings.Contains(r.WouldFail[0].Message, s.include+":") {
		t.Errorf("syntax error: %+v", r.WouldFail)
	}
	want := "nginx_upstream_config_reload_would_fail{reason=\"file_missing\"} 0\nnginx_upstream_config_reload_would_fail{reason=\"host_not_found\"} 0\nnginx_upstream_config_reload_would_fail{reason=\"parse_error\"} 1\n"
	if got := s.metrics("nginx_upstream_config_reload_would_fail"); !strings.Contains(got, want) {
		t.Errorf("metric:\n%s", got)
	}

	if err := os.Remove(s.include); err != nil {
		t.Fatal(err)
	}
	s.observe()
	if r := s.tick(); len(r.WouldFail) != 1 || r.WouldFail[0].Reason != ReasonFileMissing {
		t.Errorf("missing include: %+v", r.WouldFail)
	}
}

// TestNoAccess: an nginx the exporter cannot see is up 0, and nothing
// about it is claimed.
func TestNoAccess(t *testing.T) {
	s := newScene(t, time.Now())
	s.nginx.err = nginxproc.ErrNoAccess
	s.dns.set("app.test", "127.0.0.3")
	r := s.tick()
	if r.Up || r.Known || len(r.Pending) != 0 {
		t.Errorf("%+v", r)
	}
	got := s.metrics("nginx_upstream_dns_stale", "nginx_upstream_config_reload_pending", "nginx_upstream_nginx_last_reload_timestamp_seconds", "nginx_upstream_nginx_up")
	for _, absent := range []string{"nginx_upstream_dns_stale", "nginx_upstream_config_reload_pending", "nginx_upstream_nginx_last_reload_timestamp_seconds"} {
		if strings.Contains(got, absent+"{") || strings.Contains(got, absent+" ") {
			t.Errorf("%s exported for an nginx the exporter cannot see:\n%s", absent, got)
		}
	}
	if !strings.Contains(got, "nginx_upstream_nginx_up 0") {
		t.Errorf("up:\n%s", got)
	}
}

type fakeTest struct {
	runs int
	f    []Failure
}

func (f *fakeTest) Run(context.Context) ([]Failure, error) {
	f.runs++
	return f.f, nil
}

// TestConfigTest: nginx -t runs once per change of the tree, and its
// refusals are would-fail reasons.
func TestConfigTest(t *testing.T) {
	s := newScene(t, time.Now())
	ft := &fakeTest{f: []Failure{{Reason: ReasonParseError, Message: `unknown directive "proxy_pas" in /etc/nginx/nginx.conf:3`}}}
	s.tracker.opts.ConfigTest = ft
	r := s.tick()
	s.tick()
	if ft.runs != 1 {
		t.Errorf("nginx -t ran %d times for one version of the tree", ft.runs)
	}
	if len(r.WouldFail) != 1 || r.WouldFail[0].Reason != ReasonParseError {
		t.Errorf("would fail: %+v", r.WouldFail)
	}
	ft.f = nil
	s.observe()
	if r := s.tick(); ft.runs != 2 || len(r.WouldFail) != 0 {
		t.Errorf("after a change: runs %d, would fail %+v", ft.runs, r.WouldFail)
	}
}

// TestLoadWhileInvisible: nginx reloaded while the exporter could not
// see it; when it sees nginx again it must not claim to have seen that
// load (its lookups now are not nginx's then).
func TestLoadWhileInvisible(t *testing.T) {
	start := time.Now().Add(-time.Hour)
	s := newScene(t, start)
	s.nginx.load(start.Add(time.Minute))
	if r := s.tick(); !r.Witnessed {
		t.Fatalf("a load after the exporter's start and before its first look is seen: %+v", r)
	}
	s.nginx.mu.Lock()
	s.nginx.err = nginxproc.ErrNoAccess
	s.nginx.mu.Unlock()
	s.tick()
	// Reloaded 3s ago: before that invisible look.
	s.nginx.load(time.Now().Add(-3 * time.Second))
	r := s.tick()
	if r.Witnessed || r.Reloads != 1 {
		t.Errorf("a load before the previous look, while nginx was invisible: %+v", r)
	}
	if sa := server(r, "app.test:3000"); sa.Known {
		t.Errorf("addresses claimed for an unseen load: %+v", sa)
	}
}

type lastSet struct{ set *discovery.Set }

func (l *lastSet) Update(s *discovery.Set) { l.set = s }

// TestFollowLoaded: while a reload is pending, the probes follow the
// configuration nginx loaded; after nginx's reload, the disk's.
func TestFollowLoaded(t *testing.T) {
	start := time.Now()
	s := newScene(t, start)
	sched := &lastSet{}
	f := &Follower{Tracker: s.tracker, Next: sched}
	apply := func() *discovery.Set {
		cfg, err := nginxconf.Load(s.conf, nginxconf.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		set := discovery.Build(context.Background(), cfg, discovery.Options{Resolver: s.dns, Nginx: s.tracker})
		s.tracker.Observe(&discovery.Loaded{Nginx: cfg, Set: set}, nil)
		f.Update(set)
		return set
	}
	s.nginx.load(start.Add(time.Second))
	s.tick()
	loaded := apply() // the reload AddressesChanged triggers
	if sched.set != loaded || s.tracker.Result().Probing != ProbingDisk {
		t.Fatal("no reload pending: the disk's set is nginx's")
	}

	s.write(s.include, "upstream app { server app.test:3000; server 127.0.0.4:3000; }\n")
	disk := apply()
	if sched.set != loaded || len(disk.Targets) == len(loaded.Targets) {
		t.Errorf("reload pending: the scheduler got %d targets, want nginx's %d", len(sched.set.Targets), len(loaded.Targets))
	}
	if got := s.metrics("nginx_upstream_config_probed_source"); !strings.Contains(got, `source="loaded"`) {
		t.Errorf("metric:\n%s", got)
	}

	s.nginx.load(start.Add(2 * time.Second))
	s.tick()
	after := apply()
	if sched.set != after || s.tracker.Result().Probing != ProbingDisk {
		t.Error("after nginx's reload the disk's set must be probed")
	}

	// An exporter that did not see the load probes the disk.
	s2 := newScene(t, start)
	s2.nginx.load(start.Add(-time.Minute))
	s2.tick()
	f2 := &Follower{Tracker: s2.tracker, Next: sched}
	s2.write(s2.include, "upstream app { server 127.0.0.5:3000; }\n")
	cfg, _ := nginxconf.Load(s2.conf, nginxconf.LoadOptions{})
	set := discovery.Build(context.Background(), cfg, discovery.Options{Resolver: s2.dns})
	f2.Update(set)
	if sched.set != set || s2.tracker.Result().Probing != ProbingDisk {
		t.Error("unseen load: the disk's set")
	}
}

// TestEvidenceAmbiguous: a connection on a port that a run-time resolved
// name or a variable address also uses is not attributed.
func TestEvidenceAmbiguous(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"resolve", "upstream dyn { zone dyn 64k; server svc.test:3000 resolve; }\n"},
		{"variable with this port", ""},
		{"variable port", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &mutablePeers{}
			s := newScene(t, time.Now(), ev)
			body := "upstream app { server app.test:3000; }\n" + tc.extra
			s.write(s.include, body)
			conf, err := os.ReadFile(s.conf)
			if err != nil {
				t.Fatal(err)
			}
			loc := map[string]string{
				"resolve":                 "location /dyn { proxy_pass http://dyn; }",
				"variable with this port": "location /v { resolver 127.0.0.1; proxy_pass http://$arg_h:3000; }",
				"variable port":           "location /v { resolver 127.0.0.1; proxy_pass http://$arg_h:$arg_p; }",
			}[tc.name]
			s.write(s.conf, strings.Replace(string(conf), "location /lit", loc+"\n        location /lit", 1))
			s.observe()
			s.nginx.load(time.Now().Add(-time.Minute))
			s.dns.set("app.test", "127.0.0.3")
			ev.set(Peer{Addr: netip.MustParseAddrPort("127.0.0.2:3000")})
			if sa := server(s.tick(), "app.test:3000"); sa.Known || sa.Source != SourceUnknown {
				t.Errorf("ambiguous peer attributed: %+v", sa)
			}
		})
	}
}

// TestWorkerRespawn: a crashed worker respawned by the master is not a
// reload; replacing every worker is.
func TestWorkerRespawn(t *testing.T) {
	start := time.Now()
	s := newScene(t, start)
	s.nginx.load(start.Add(time.Second))
	first := s.tick().LastLoad
	s.nginx.mu.Lock()
	s.nginx.snap.Current[0] = nginxproc.Process{PID: 999, Start: start.Add(time.Minute)}
	s.nginx.mu.Unlock()
	if r := s.tick(); r.Reloads != 0 || !r.LastLoad.Equal(first) {
		t.Errorf("respawn counted as a reload: %d, last load %v", r.Reloads, r.LastLoad)
	}
	s.nginx.mu.Lock()
	s.nginx.snap.Current[1] = nginxproc.Process{PID: 998, Start: start.Add(2 * time.Minute)}
	s.nginx.mu.Unlock()
	if r := s.tick(); r.Reloads != 0 {
		t.Errorf("second respawn counted as a reload: %d", r.Reloads)
	}
	s.nginx.load(start.Add(3 * time.Minute))
	if r := s.tick(); r.Reloads != 1 {
		t.Errorf("a reload not counted: %d", r.Reloads)
	}
}

// TestReloadTransition: at a reload the new workers run beside the old
// ones for a moment; the generation changes when the old ones leave.
func TestReloadTransition(t *testing.T) {
	start := time.Now()
	s := newScene(t, start)
	s.nginx.load(start.Add(time.Second))
	s.tick()
	s.nginx.mu.Lock()
	old := append([]nginxproc.Process(nil), s.nginx.snap.Current...)
	reload := time.Now() // after the first look, before the transitional one
	fresh := []nginxproc.Process{{PID: 500, Start: reload}, {PID: 501, Start: reload}}
	s.nginx.snap.Current = append(append([]nginxproc.Process(nil), old...), fresh...)
	s.nginx.mu.Unlock()
	time.Sleep(100 * time.Millisecond) // the transitional look is clearly after the reload
	if r := s.tick(); r.Reloads != 0 {
		t.Errorf("counted before the old workers left: %d", r.Reloads)
	}
	s.nginx.mu.Lock()
	s.nginx.snap.Current, s.nginx.snap.Old = fresh, old[:1]
	s.nginx.mu.Unlock()
	if r := s.tick(); r.Reloads != 1 || !r.LastLoad.Equal(reload) || r.Old != 1 || !r.Witnessed {
		t.Errorf("after the old workers left: reloads %d, last load %v, old %d", r.Reloads, r.LastLoad, r.Old)
	}
}

// clientPEM is a certificate and its key in one PEM file, as nginx loads
// them for proxy_ssl_certificate(_key): a new one on every call.
func clientPEM(t *testing.T) string {
	t.Helper()
	c := tu.MustCert(t, "client", tu.CertOptions{NotAfter: time.Now().Add(time.Hour)})
	key, err := c.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return string(c.CertPEM()) + string(key)
}

// TestSeenLoadBeforeRead: nginx loads while the exporter starts. When
// the exporter read the tree after nginx's load began, the set it probes
// is already the one nginx runs: no second load (AddressesChanged) for
// it, and that set is what the probes follow while a later change on
// disk waits for nginx's reload. When it read the tree before nginx
// loaded, or too close to tell, the tree is loaded again, as before.
func TestSeenLoadBeforeRead(t *testing.T) {
	for _, tc := range []struct {
		name       string
		nginxAt    time.Duration // nginx's load, relative to the exporter's read
		wantReload bool
	}{
		{"nginx loaded before the read", -time.Second, false},
		{"nginx loaded within two clock ticks of the read", -readSlack / 2, true},
		{"nginx loaded after the read", time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScene(t, time.Now().Add(-time.Minute))
			// Literal addresses only: a name would move the targets
			// to nginx's resolution whatever the read time.
			s.write(s.include, "upstream app { server 127.0.0.2:3000; }\n")
			sched := &lastSet{}
			f := &Follower{Tracker: s.tracker, Next: sched}
			load := func() *discovery.Set {
				t.Helper()
				l, err := discovery.Load(context.Background(), discovery.Options{NginxConfig: s.conf, Resolver: s.dns, Nginx: s.tracker})
				if err != nil {
					t.Fatal(err)
				}
				s.tracker.Observe(l, nil)
				f.Update(l.Set)
				return l.Set
			}
			first := load()
			s.nginx.load(first.Read.Add(tc.nginxAt))
			r := s.tick()
			if !r.Witnessed || r.Probing != ProbingDisk {
				t.Fatalf("nginx's load: %+v", r)
			}
			if got := s.changed == 1; got != tc.wantReload || s.changed > 1 {
				t.Fatalf("AddressesChanged called %d times; want a reload: %v", s.changed, tc.wantReload)
			}
			if tc.wantReload {
				return
			}
			// A change on disk that nginx has not loaded: the probes
			// keep following the first set, nginx's.
			s.write(s.include, "upstream app { server 127.0.0.2:3000; server 127.0.0.4:3000; }\n")
			disk := load()
			if sched.set != first || len(disk.Targets) == len(first.Targets) || s.tracker.Result().Probing != ProbingLoaded {
				t.Errorf("reload pending: the scheduler got %d targets (probing %q), want nginx's %d", len(sched.set.Targets), s.tracker.Result().Probing, len(first.Targets))
			}
		})
	}
}
