package statuspage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/html"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/jsonschema"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// statuses is a Source holding fixed results: the page renders whatever
// the scheduler recorded, so fixed records make the output reproducible.
type statuses []scheduler.Status

func (s statuses) Each(fn func(*scheduler.Status)) {
	// One copy handed out again and again, as the scheduler does.
	var cp scheduler.Status
	for i := range s {
		cp = s[i]
		fn(&cp)
	}
}

// Read finds a target's status by its labels, as the scheduler does.
func (s statuses) Read(k discovery.Key, st *scheduler.Status) bool {
	for i := range s {
		if s[i].Target.Key == k {
			*st = s[i]
			return true
		}
	}
	return false
}

// History gives the first failing server of the fixture a past: it
// answered until two probes ago. The others have none.
func (s statuses) History(k discovery.Key) []scheduler.Outcome {
	if k.Server != "127.0.0.1:8001" {
		return nil
	}
	var connect [len(prober.PhaseNames)]time.Duration
	connect[prober.PhaseConnect] = 150 * time.Microsecond
	ok := connect
	ok[prober.PhaseProcessing] = 2 * time.Millisecond
	return []scheduler.Outcome{
		{Finished: now.Add(-4 * time.Second), Reason: prober.ReasonConnectionRefused, Duration: 300 * time.Microsecond, Phases: connect},
		{Finished: now.Add(-19 * time.Second), Reason: prober.ReasonConnectionRefused, Duration: 280 * time.Microsecond, Phases: connect},
		{Finished: now.Add(-34 * time.Second), Success: true, Duration: 2200 * time.Microsecond, Phases: ok},
	}
}

// now is the fixed clock of the golden files.
var now = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

// outcome is what the fixture's schedule last saw of one server.
type outcome struct {
	reason       prober.Reason
	inconclusive prober.Inconclusive
	pending      bool
	ok           bool
	duration     time.Duration
	age          time.Duration
	err          error
}

// fixtureOutcomes: by server, every state a row can be in.
var fixtureOutcomes = map[string]outcome{
	"127.0.0.1:8001":                 {reason: prober.ReasonConnectionRefused, duration: 300 * time.Microsecond, age: 4 * time.Second, err: errors.New("dial tcp 127.0.0.1:8001: connect: connection refused")},
	"127.0.0.1:8002":                 {ok: true, duration: 2 * time.Millisecond, age: 9 * time.Second},
	"127.0.0.1:9001":                 {ok: true, duration: 1500 * time.Microsecond, age: 2 * time.Second},
	"127.0.0.1:9002":                 {reason: prober.ReasonReadTimeout, duration: 5 * time.Second, age: 12 * time.Second},
	"unix:/run/php/fixture-fpm.sock": {reason: prober.ReasonSocketNotFound, duration: 80 * time.Microsecond, age: time.Second},
	"127.0.0.1:7001":                 {inconclusive: prober.InconclusiveProbeTimeout, duration: 2 * time.Second, age: 3 * time.Second},
	"127.0.0.1:7002":                 {pending: true},
}

func load(t testing.TB, conf string) *discovery.Loaded {
	t.Helper()
	l, err := discovery.Load(context.Background(), discovery.Options{NginxConfig: conf})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func fixture(t testing.TB) (statuses, *discovery.Loaded) {
	t.Helper()
	l := load(t, "testdata/fixture.conf")
	var out statuses
	for _, tg := range l.Set.Targets {
		st := scheduler.Status{Target: tg}
		o, ok := fixtureOutcomes[tg.Server]
		if tg.Probe != nil && !o.pending {
			if !ok {
				t.Fatalf("no outcome for %s in the fixture", tg.Server)
			}
			st.HasResult = true
			st.Runs = 7
			st.Finished = now.Add(-o.age)
			st.Result = prober.Result{Success: o.ok, Reason: o.reason, Inconclusive: o.inconclusive, Duration: o.duration, Err: o.err}
			st.Result.Phases[prober.PhaseConnect] = o.duration / 2
			st.Result.Phases[prober.PhaseProcessing] = o.duration / 2
			if o.ok {
				st.Result.HTTPStatus = 200
			}
			if o.reason != "" {
				for i, r := range prober.Reasons {
					if r == o.reason {
						st.Failures[i] = 3
					}
				}
			}
		}
		out = append(out, st)
	}
	return out, l
}

func newHandlers(src Source, l *discovery.Loaded, mutate func(*Options)) http.Handler {
	opts := Options{
		Source: src,
		Config: func() ConfigState {
			return ConfigState{Loaded: l, LastOK: true, LastSuccess: now.Add(-90 * time.Second)}
		},
		NginxConfig: "testdata/fixture.conf",
		Interval:    15 * time.Second,
		Version:     "1.2.3",
		MaxRequests: 4,
		Now:         func() time.Time { return now },
	}
	if mutate != nil {
		mutate(&opts)
	}
	mux := http.NewServeMux()
	for p, h := range New(opts).Routes() {
		mux.Handle(p, h)
	}
	return mux
}

func get(t testing.TB, h http.Handler, url string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the rendered output (go test -update rewrites it); got:\n%s", path, got)
	}
}

// TestGolden pins the HTML of the page and of a target, and the API's
// JSON, for the fixture.
// withSignals adds the fixture's running nginx (a reload pending) and
// what its error log said (the healthy api server failed real requests).
func withSignals(o *Options) {
	reload := now.Add(-time.Hour)
	o.Nginx = func() *report.Nginx {
		return &report.Nginx{Running: true, LastReload: &reload,
			ReloadPending: []report.PendingFile{{Path: "/etc/nginx/conf.d/shop.conf", Kind: "config", Change: "modified"}},
			Messages:      []string{"nginx runs an older configuration than the one on disk: changed since its last reload: /etc/nginx/conf.d/shop.conf (modified); fix: nginx -t && nginx -s reload"}}
	}
	k := discovery.Key{Upstream: "api", Server: "127.0.0.1:9001", Address: "127.0.0.1:9001", Protocol: "http"}
	o.Logged = loggedFrom(map[discovery.Key]*report.Logged{k: {Errors: map[string]int{"read_timeout": 4, "premature_close": 1}, Last: now.Add(-time.Minute)}})
}

// loggedFrom is an error log that said m; each lookup fills the Logged
// it is given as the exporter's does, reusing its maps, and done ends
// the answer: a lookup after it fails the test.
func loggedFrom(m map[discovery.Key]*report.Logged) func() (LoggedLookup, func()) {
	return func() (LoggedLookup, func()) {
		ended := false
		return func(k discovery.Key, into *report.Logged) bool {
				if ended {
					panic("a lookup after the answer's done")
				}
				lg, ok := m[k]
				if !ok {
					return false
				}
				errs, body := into.Errors, into.BodyErrors
				if errs == nil {
					errs = map[string]int{}
				}
				clear(errs)
				clear(body)
				maps.Copy(errs, lg.Errors)
				if len(lg.BodyErrors) > 0 {
					if body == nil {
						body = map[string]int{}
					}
					maps.Copy(body, lg.BodyErrors)
				}
				*into = *lg
				into.Errors, into.BodyErrors = errs, body
				return true
			}, func() {
				ended = true
			}
	}
}

func TestGolden(t *testing.T) {
	src, l := fixture(t)
	h := newHandlers(src, l, withSignals)
	for _, tc := range []struct{ url, file string }{
		{"/", "page.golden.html"},
		{"/?state=problems&refresh=off", "page-problems.golden.html"},
		{"/target?upstream=shop&server=127.0.0.1%3A8001&address=127.0.0.1%3A8001&protocol=http", "target.golden.html"},
		{"/api/v1/targets", "api.golden.json"},
		{"/target?upstream=api&server=127.0.0.1%3A9001", "target-logged.golden.html"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			code, body, _ := get(t, h, tc.url)
			if code != http.StatusOK {
				t.Fatalf("%s: %d\n%s", tc.url, code, body)
			}
			golden(t, tc.file, body)
		})
	}
}

// rows returns the data-server attributes of the page's rows, in order,
// with their state.
func rows(t *testing.T, page string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" {
			var server, state string
			for _, a := range n.Attr {
				switch a.Key {
				case "data-server":
					server = a.Val
				case "data-state":
					state = a.Val
				}
			}
			if server != "" {
				out = append(out, state+" "+server)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

func TestOrderFailingFirstGroupedByUpstream(t *testing.T) {
	src, l := fixture(t)
	_, body, _ := get(t, newHandlers(src, l, nil), "/")
	got := strings.Join(rows(t, body), "\n")
	// Groups: a failing primary first (shop before api and php in
	// configuration order), then the upstream with no verdict, each group
	// failing first.
	want := strings.Join([]string{
		"failing 127.0.0.1:8001", "ok 127.0.0.1:8002", "down 127.0.0.1:8003",
		"failing 127.0.0.1:9002", "ok 127.0.0.1:9001",
		"failing unix:/run/php/fixture-fpm.sock",
		"inconclusive 127.0.0.1:7001", "pending 127.0.0.1:7002",
	}, "\n")
	if got != want {
		t.Errorf("rows:\n%s\nwant:\n%s", got, want)
	}
}

func TestFilters(t *testing.T) {
	src, l := fixture(t)
	h := newHandlers(src, l, nil)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"state=failing", []string{"failing 127.0.0.1:8001", "failing 127.0.0.1:9002", "failing unix:/run/php/fixture-fpm.sock"}},
		{"state=problems&q=spa", []string{"inconclusive 127.0.0.1:7001", "pending 127.0.0.1:7002"}},
		{"q=:900", []string{"failing 127.0.0.1:9002", "ok 127.0.0.1:9001"}},
		{"upstream=sho", nil},
		{"upstream=shop&state=problems", []string{"failing 127.0.0.1:8001"}},
		{"state=down", []string{"down 127.0.0.1:8003"}},
		{"state=backup", []string{"pending 127.0.0.1:7002", "ok 127.0.0.1:8002"}},
		{"upstream=api&state=ok", []string{"ok 127.0.0.1:9001"}},
		{"upstream=nothing-like-this", nil},
	} {
		code, body, _ := get(t, h, "/?"+tc.query)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", tc.query, code)
		}
		if got := rows(t, body); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: rows %q, want %q", tc.query, got, tc.want)
		}
		// The summary always counts every server.
		if !strings.Contains(body, "<strong>7</strong> servers probed") {
			t.Errorf("%s: summary does not count every server", tc.query)
		}
	}
	if code, _, _ := get(t, h, "/?state=bogus"); code != http.StatusBadRequest {
		t.Errorf("unknown state: %d, want 400", code)
	}
	if code, _, _ := get(t, h, "/api/v1/targets?state=bogus"); code != http.StatusBadRequest {
		t.Errorf("API, unknown state: %d, want 400", code)
	}
	if code, _, _ := get(t, h, "/nothing-here"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
}

func TestAutoRefresh(t *testing.T) {
	src, l := fixture(t)
	h := newHandlers(src, l, nil)
	_, on, _ := get(t, h, "/?state=failing")
	if !strings.Contains(on, `<meta http-equiv="refresh" content="15">`) {
		t.Error("no auto-refresh by default")
	}
	if !strings.Contains(on, `href="/?refresh=off&amp;state=failing" id="refresh-toggle"`) {
		t.Errorf("no link to turn auto-refresh off that keeps the filter:\n%s", on)
	}
	_, off, _ := get(t, h, "/?state=failing&refresh=off")
	if strings.Contains(off, `http-equiv="refresh"`) {
		t.Error("auto-refresh still on with refresh=off")
	}
	if !strings.Contains(off, `<input type="hidden" name="refresh" value="off">`) {
		t.Error("the filter form drops refresh=off")
	}
}

func TestHeaders(t *testing.T) {
	src, l := fixture(t)
	h := newHandlers(src, l, nil)
	_, _, hdr := get(t, h, "/")
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q: the page must load nothing", csp)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	_, _, hdr = get(t, h, "/api/v1/targets")
	if ct := hdr.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("API Content-Type %q", ct)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", rec.Code)
	}
}

// TestTargetLimitedToConfiguredTargets: /target shows configured servers
// only, and says so for anything else.
func TestTargetLimitedToConfiguredTargets(t *testing.T) {
	src, l := fixture(t)
	h := newHandlers(src, l, nil)
	code, body, _ := get(t, h, "/target?upstream=shop&server=127.0.0.1:8001")
	if code != http.StatusOK || !strings.Contains(body, "connection refused") || !strings.Contains(body, "connection_refused</code>: 3") {
		t.Errorf("configured target: %d\n%s", code, body)
	}
	if !strings.Contains(body, "testdata/fixture.conf:25") {
		t.Errorf("the view does not say where the server is used:\n%s", body)
	}
	code, body, _ = get(t, h, "/target?upstream=shop&server=10.0.0.1:80")
	if code != http.StatusNotFound || !strings.Contains(body, "No configured upstream server") {
		t.Errorf("unknown target: %d\n%s", code, body)
	}
	if code, _, _ := get(t, h, "/target"); code != http.StatusBadRequest {
		t.Errorf("no labels: %d, want 400", code)
	}
}

func TestAPIMatchesSchema(t *testing.T) {
	doc, err := os.ReadFile("../docs/api/targets.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := jsonschema.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	src, l := fixture(t)
	facts := func(dst []report.Fact, _ discovery.Key) []report.Fact {
		return append(dst, report.Fact{Source: "test", Name: "example", Value: "v", State: report.FactWarning, Lines: []string{"a line"}})
	}
	for _, h := range []http.Handler{
		newHandlers(src, l, nil),
		newHandlers(src, l, withSignals),
		newHandlers(src, l, func(o *Options) { o.TargetFacts = []TargetFacts{facts} }),
		newHandlers(statuses{}, nil, func(o *Options) { o.Config = nil }),
	} {
		for _, q := range []string{"", "?state=failing", "?upstream=none"} {
			code, body, _ := get(t, h, "/api/v1/targets"+q)
			if code != http.StatusOK {
				t.Fatalf("%s: %d", q, code)
			}
			for _, err := range schema.Validate([]byte(body)) {
				t.Errorf("%s: %v", q, err)
			}
		}
	}
}

// TestBoundedRenders: renders beyond MaxRequests are refused, not queued.
func TestBoundedRenders(t *testing.T) {
	_, l := fixture(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	blocking := sourceFunc(func(fn func(*scheduler.Status)) {
		once.Do(func() { close(entered) })
		<-release
	})
	h := newHandlers(blocking, l, func(o *Options) { o.MaxRequests = 1 })
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		done <- rec.Code
	}()
	<-entered
	if code, _, hdr := get(t, h, "/api/v1/targets"); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("second render while one runs: %d, want 503 with Retry-After", code)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("first render: %d", code)
	}
}

type sourceFunc func(fn func(*scheduler.Status))

func (f sourceFunc) Each(fn func(*scheduler.Status)) { f(fn) }

var _ = io.Discard
var _ = fmt.Sprint

// TestDetailLinkOfRuntimeResolvedServer: a server nginx resolves while
// running is shown with the address the probe dialled, and its row still
// links to its view.
func TestDetailLinkOfRuntimeResolvedServer(t *testing.T) {
	k := discovery.Key{Upstream: "dyn", Server: "app.internal:80", Address: "app.internal:80", Protocol: "http"}
	src := statuses{{
		Target:    &discovery.Target{Key: k, Network: "tcp", Probe: &prober.Peer{Network: "tcp", Resolve: &prober.RuntimeResolve{Host: "app.internal", Port: "80"}}},
		HasResult: true, Finished: now, Runs: 1,
		Result: prober.Result{Reason: prober.ReasonConnectionRefused, Address: "10.1.2.3:80"},
	}}
	h := newHandlers(src, nil, nil)
	_, page, _ := get(t, h, "/")
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var link string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" {
			for _, a := range n.Attr {
				if a.Key == "href" && strings.HasPrefix(a.Val, PathTarget+"?") {
					link = a.Val
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !strings.Contains(page, "→ 10.1.2.3:80") || link == "" {
		t.Fatalf("row does not show the dialled address or has no detail link (%q):\n%s", link, page)
	}
	code, body, _ := get(t, h, link)
	if code != http.StatusOK || !strings.Contains(body, "10.1.2.3:80") {
		t.Errorf("GET %s: %d\n%s", link, code, body)
	}
	if code, _, _ := get(t, h, "/target?upstream=dyn&server=app.internal:80&address=app.internal:80"); code != http.StatusOK {
		t.Errorf("the view by the configured address label: %d", code)
	}
}
