package loadstate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
)

// registryServers is how the per-server families were exported through
// the registry before ServersText: the reference its text must match.
type registryServers struct{ r Result }

var (
	refStale  = prometheus.NewDesc(staleName, staleHelp, []string{"upstream", "server"}, nil)
	refSource = prometheus.NewDesc(sourceName, sourceHelp, []string{"upstream", "server", "source"}, nil)
)

func (registryServers) Describe(ch chan<- *prometheus.Desc) { ch <- refStale; ch <- refSource }

func (c registryServers) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.Servers {
		ch <- prometheus.MustNewConstMetric(refSource, prometheus.GaugeValue, 1, s.Upstream, s.Server, string(s.Source))
		if s.Known {
			ch <- prometheus.MustNewConstMetric(refStale, prometheus.GaugeValue, b2f(s.Stale), s.Upstream, s.Server)
		}
	}
}

// sortedSamples sorts the sample lines of each family, keeping HELP and
// TYPE first: the registry sorts a family's series, the writer keeps
// the configuration's order, and both are valid exposition.
func sortedSamples(text string) string {
	var out, samples []string
	flush := func() {
		slices.Sort(samples)
		out = append(out, samples...)
		samples = nil
	}
	for _, l := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(l, "#") {
			flush()
			out = append(out, l)
			continue
		}
		samples = append(samples, l)
	}
	flush()
	return strings.Join(out, "")
}

func TestServersText(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers []ServerAddresses
	}{
		{name: "none"},
		{name: "none known", servers: []ServerAddresses{
			{Upstream: "app", Server: "app.test:80", Source: SourceUnknown},
		}},
		{name: "mixed", servers: []ServerAddresses{
			{Upstream: "php", Server: "php.test:9000", Source: SourceLoad, Known: true, Stale: true},
			{Upstream: "app", Server: "app.test:80", Source: SourceUnknown},
			{Upstream: "app", Server: "b.test:80", Source: SourceEvidence, Known: true},
			{Upstream: `we"ird\up` + "\n", Server: `x\y.test:1`, Source: SourceLoad, Known: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Tracker{}
			tr.result = Result{Servers: tc.servers}
			var got strings.Builder
			n, err := NewServersText(tr).WriteTo(&got)
			if err != nil || n != int64(got.Len()) {
				t.Fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, got.Len())
			}
			want, err := testutil.CollectAndFormat(registryServers{tr.result}, expfmt.TypeTextPlain, sourceName, staleName)
			if err != nil {
				t.Fatal(err)
			}
			if sortedSamples(got.String()) != sortedSamples(string(want)) {
				t.Errorf("ServersText wrote\n%s\nthe registry writes\n%s", got.String(), want)
			}
			if problems, err := promlint.New(strings.NewReader(got.String())).Lint(); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %v", problems, err)
			}
		})
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("client went away")
	}
	f.after--
	return len(p), nil
}

// TestServersTextWriteError: a failed write ends WriteTo with its error,
// at the first flush or later.
func TestServersTextWriteError(t *testing.T) {
	tr := &Tracker{}
	for i := range 2000 {
		tr.result.Servers = append(tr.result.Servers, ServerAddresses{Upstream: "u", Server: strings.Repeat("s", 40) + string(rune('a'+i%26)), Source: SourceLoad, Known: true})
	}
	st := NewServersText(tr)
	for _, after := range []int{0, 1, 2} {
		if _, err := st.WriteTo(&failingWriter{after: after}); err == nil {
			t.Errorf("a writer failing after %d writes: no error", after)
		}
	}
	var b strings.Builder
	if _, err := st.WriteTo(&b); err != nil || strings.Count(b.String(), "\n") != 2*2000+4 {
		t.Errorf("after the failures: %d lines, %v", strings.Count(b.String(), "\n"), err)
	}
}
