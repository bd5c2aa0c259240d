package collector

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestOptionsLeaveOutOnlyTheirFamily renders the same targets with each
// option and checks that exactly the named family disappears while every
// other family keeps all its series.
func TestOptionsLeaveOutOnlyTheirFamily(t *testing.T) {
	src := append(fixture(), bigSource(20)...)
	render := func(opts ...Option) (map[string]int, int) {
		t.Helper()
		var buf bytes.Buffer
		if _, err := NewTextWriter(src, opts...).WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(buf.String()))
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		total := 0
		for name, mf := range mfs {
			counts[name] = len(mf.Metric)
			total += len(mf.Metric)
		}
		return counts, total
	}
	all, allTotal := render()
	const phases, timeouts = "nginx_upstream_probe_phase_duration_seconds", "nginx_upstream_probe_timeout_seconds"
	if all[phases] == 0 || all[timeouts] == 0 {
		t.Fatalf("fixture has no phase or timeout series: %v", all)
	}
	for name, tc := range map[string]struct {
		opts []Option
		gone []string
	}{
		"phases":   {[]Option{WithoutPhases()}, []string{phases}},
		"timeouts": {[]Option{WithoutTimeouts()}, []string{timeouts}},
		"both":     {[]Option{WithoutTimeouts(), WithoutPhases()}, []string{phases, timeouts}},
	} {
		t.Run(name, func(t *testing.T) {
			got, total := render(tc.opts...)
			want := allTotal
			for _, g := range tc.gone {
				if _, ok := got[g]; ok {
					t.Errorf("%s still rendered", g)
				}
				want -= all[g]
			}
			if total != want {
				t.Errorf("%d series, want %d", total, want)
			}
			for fam, n := range all {
				if !slices.Contains(tc.gone, fam) && got[fam] != n {
					t.Errorf("%s: %d series, want %d", fam, got[fam], n)
				}
			}
		})
	}
}
