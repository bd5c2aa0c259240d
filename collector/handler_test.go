package collector

import (
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestHandlerServesRegistryAndTargets(t *testing.T) {
	reg := prometheus.NewRegistry()
	var state ConfigState
	reg.MustRegister(NewSelfMetrics(&state, nil))
	h := Handler(reg, NewTextWriter(fixture()), 1, nil)

	for _, gz := range []bool{false, true} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var body io.Reader = w.Body
		if gz {
			if w.Header().Get("Content-Encoding") != "gzip" {
				t.Fatalf("gzip requested but not served")
			}
			zr, err := gzip.NewReader(w.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		text, _ := io.ReadAll(body)
		for _, want := range []string{"nginx_upstream_exporter_config_last_reload_successful 0", "nginx_upstream_probe_success{", "nginx_upstream_probe_target_info{"} {
			if !strings.Contains(string(text), want) {
				t.Errorf("gzip=%v: page lacks %q", gz, want)
			}
		}
		if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
			t.Errorf("registry unusable: %v", err)
		}
	}
}
