package collector

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

type fakeLogs errorlog.Snapshot

func (f fakeLogs) Snapshot() errorlog.Snapshot { return errorlog.Snapshot(f) }

func logsFixture() fakeLogs {
	s := errorlog.Snapshot{
		Targets: []errorlog.TargetErrors{{
			Key:        discovery.Key{Upstream: "app", Server: "app.internal:3000", Address: "127.0.0.1:3000", Protocol: "http"},
			Errors:     map[prober.Reason]uint64{prober.ReasonReadTimeout: 3, prober.ReasonConnectionRefused: 1},
			BodyErrors: map[prober.Reason]uint64{prober.ReasonPrematureClose: 2},
			Last:       time.Unix(1_700_000_000, 250_000_000),
		}},
		NoLiveUpstreams: map[string]uint64{"app": 4},
		Unattributed:    map[prober.Reason]uint64{prober.ReasonDNSError: 5},
		UnknownPeers:    []errorlog.UnknownPeerErrors{{Upstream: "app", Protocol: "http", Reason: prober.ReasonConnectionRefused, Count: 6}},
	}
	s.Lines[errorlog.LineMatched] = 8
	s.Lines[errorlog.LineUnattributed] = 5
	s.Lines[errorlog.LineOther] = 100
	s.Lines[errorlog.LineUnparsed] = 1
	s.Files[errorlog.FileTailing] = 2
	s.Files[errorlog.FileUnreadable] = 1
	return fakeLogs(s)
}

// TestLogsGolden holds the error-log families to a golden exposition and
// to the metric linter.
func TestLogsGolden(t *testing.T) {
	c := NewLogs(logsFixture())
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	golden := filepath.Join("testdata", "logs.prom")
	if *update {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(reg, f); err != nil {
		t.Error(err)
	}
}

// TestLogsTextAsCollector: NewLogsText's registry part and text writer
// together give exactly the families NewLogs gives, for hostile label
// values too, and the registry part holds no per-target family.
func TestLogsTextAsCollector(t *testing.T) {
	fix := logsFixture()
	fix.Targets = append(fix.Targets,
		errorlog.TargetErrors{Key: discovery.Key{Upstream: "we\"ird\\up\nstream", Server: "unix:/run/a b.sock", Address: "unix:/run/a b.sock", Protocol: "fastcgi"},
			Errors: map[prober.Reason]uint64{prober.ReasonSocketNotFound: 7}},
		errorlog.TargetErrors{Key: discovery.Key{Upstream: "quiet", Server: "10.0.0.1:80", Address: "10.0.0.1:80", Protocol: "http"},
			BodyErrors: map[prober.Reason]uint64{prober.ReasonReadTimeout: 1}, Last: time.Unix(1_700_000_100, 0)})
	ref := prometheus.NewPedanticRegistry()
	ref.MustRegister(NewLogs(fix))
	want, err := ref.Gather()
	if err != nil {
		t.Fatal(err)
	}

	reg, text := NewLogsText(fix)
	split := prometheus.NewPedanticRegistry()
	split.MustRegister(reg)
	got, err := split.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range got {
		if n := mf.GetName(); n == logErrorsName || n == logBodyName || n == logLastErrorName {
			t.Errorf("registry part has the per-target family %s", n)
		}
	}
	var buf strings.Builder
	if _, err := text.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("text writer output does not parse: %v\n%s", err, buf.String())
	}
	all := prometheus.Gatherers{split, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var out []*dto.MetricFamily
		for _, mf := range parsed {
			out = append(out, mf)
		}
		return out, nil
	})}
	merged, err := all.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var w, g strings.Builder
	for _, mf := range want {
		expfmt.MetricFamilyToText(&w, mf)
	}
	for _, mf := range merged {
		expfmt.MetricFamilyToText(&g, mf)
	}
	if w.String() != g.String() {
		t.Errorf("split exposition differs from the collector's:\n got:\n%s\nwant:\n%s", g.String(), w.String())
	}
}

// bigLogs is an error log naming n targets, with the reasons, body
// errors and times varied among them, some labels to escape.
func bigLogs(n int) fakeLogs {
	var s errorlog.Snapshot
	for i := range n {
		te := errorlog.TargetErrors{
			Key:    discovery.Key{Upstream: "app", Server: fmt.Sprintf("app%05d.internal:3000", i), Address: fmt.Sprintf("127.0.%d.%d:3000", i/250, i%250), Protocol: "http"},
			Errors: map[prober.Reason]uint64{prober.ReasonConnectionRefused: uint64(i)},
		}
		if i%3 == 0 {
			te.Errors[prober.ReasonReadTimeout] = 7
			te.BodyErrors = map[prober.Reason]uint64{prober.ReasonPrematureClose: uint64(i % 11)}
		}
		if i%5 == 0 {
			te.Key.Server = fmt.Sprintf(`app%05d "q"\n`, i)
		}
		if i%7 != 0 {
			te.Last = time.Unix(1_700_000_000+int64(i), 250_000_000)
		}
		s.Targets = append(s.Targets, te)
	}
	return fakeLogs(s)
}

// TestLogsTextInParts: served by Handler, LogsText's families are cut
// into ranges once the sizes are known and rendered by several workers,
// and the page is byte for byte the one WriteTo writes.
func TestLogsTextInParts(t *testing.T) {
	defer goleak.VerifyNone(t)
	lt := &LogsText{src: bigLogs(3000)}
	want := referencePage(t, testRegistry(), fixture(), lt)
	for _, workers := range []int{1, 2, 4} {
		e := newExposition()
		e.segmentBytes = 16 << 10
		e.workers = func() int { return workers }
		h := newHandler(testRegistry(), NewTextWriter(fixture()), 1, nil, e, lt)
		for scrape := range 2 {
			for _, gz := range []bool{false, true} {
				if got := get(t, h, gz); !bytes.Equal(got, want) {
					t.Fatalf("%d workers, scrape %d, gzip %v: page differs at byte %d of %d/%d",
						workers, scrape, gz, firstDiff(got, want), len(got), len(want))
				}
			}
		}
	}
	parts, done := lt.AppendParts(nil, 16<<10)
	defer done()
	if len(parts) < 3*len(logFamilies) {
		t.Errorf("%d parts for %d families of 3,000 targets at 16 KB", len(parts), len(logFamilies))
	}
}
