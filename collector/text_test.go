package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parsed flattens a text exposition into sorted "name{labels} value" lines
// plus HELP/TYPE per family, so two expositions can be compared whatever
// their series order.
func parsed(t *testing.T, text []byte) []string {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	var out []string
	for name, mf := range mfs {
		out = append(out, name+" HELP "+mf.GetHelp()+" TYPE "+mf.GetType().String())
		for _, m := range mf.Metric {
			// The text format does not order labels; Gather sorts them.
			sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
			var b strings.Builder
			one := &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metric: []*dto.Metric{m}}
			expfmt.MetricFamilyToText(&b, one)
			out = append(out, b.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestWriteTextMatchesCollect(t *testing.T) {
	src := fixture()
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(src))
	var want bytes.Buffer
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&want, mf)
	}
	var got bytes.Buffer
	if err := WriteText(&got, src); err != nil {
		t.Fatal(err)
	}
	w, g := parsed(t, want.Bytes()), parsed(t, got.Bytes())
	if strings.Join(w, "\n") != strings.Join(g, "\n") {
		t.Errorf("WriteText differs from Collect.\nCollect:\n%s\n\nWriteText:\n%s", strings.Join(w, "\n"), strings.Join(g, "\n"))
	}
	// Twice: the pooled snapshot must not leak state between scrapes.
	var again bytes.Buffer
	WriteText(&again, src)
	if again.String() != got.String() {
		t.Error("second WriteText differs from the first")
	}
}

func TestHandler(t *testing.T) {
	src := fixture()
	self := prometheus.NewRegistry()
	self.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "nginx_upstream_exporter_probes_in_flight", Help: "x"}))
	h := Handler(self, src, nil)
	for _, gz := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if gz {
			if rec.Header().Get("Content-Encoding") != "gzip" {
				t.Fatal("no gzip")
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(zr)
		}
		lines := parsed(t, body)
		text := strings.Join(lines, "\n")
		for _, want := range []string{"nginx_upstream_exporter_probes_in_flight 0", `nginx_upstream_probe_runs_total{address="127.0.0.1:3000"`} {
			if !strings.Contains(text, want) {
				t.Errorf("gzip=%v: missing %q in\n%s", gz, want, text)
			}
		}
	}
}
