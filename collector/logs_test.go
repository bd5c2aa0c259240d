package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

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
