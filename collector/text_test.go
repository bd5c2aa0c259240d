package collector

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// reloadingSource hands out its statuses in a different order (and one
// fewer) on every call after the first, as a scheduler does when a reload
// lands between the families of one scrape.
type reloadingSource struct {
	sts   []scheduler.Status
	calls int
}

func (r *reloadingSource) Each(fn func(st *scheduler.Status)) {
	r.calls++
	order := r.sts
	if r.calls > 1 {
		order = nil
		for i := len(r.sts) - 1; i >= 1; i-- {
			order = append(order, r.sts[i])
		}
	}
	var st scheduler.Status
	for i := range order {
		st = order[i]
		fn(&st)
	}
}

// TestTextWriterTargetsChangeDuringScrape: the TextWriter reads the source
// once per family and reuses labels by position; when the targets move
// between families, every series still carries its own target's labels.
func TestTextWriterTargetsChangeDuringScrape(t *testing.T) {
	src := &reloadingSource{}
	for i := range 5 {
		addr := fmt.Sprintf("127.0.0.%d:80", i+1)
		src.sts = append(src.sts, scheduler.Status{Target: tgt("app", addr, addr, "http", defaults, true), Runs: uint64(100 + i)})
	}
	tw := NewTextWriter(src)
	for range 2 {
		src.calls = 0
		var b strings.Builder
		if _, err := tw.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		runs := 0
		for _, line := range strings.Split(b.String(), "\n") {
			if !strings.HasPrefix(line, "nginx_upstream_probe_runs_total{") {
				continue
			}
			runs++
			var i int
			if _, err := fmt.Sscanf(line[strings.Index(line, `address="127.0.0.`)+len(`address="127.0.0.`):], "%d", &i); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if want := fmt.Sprintf("} %d", 100+i-1); !strings.HasSuffix(line, want) {
				t.Errorf("%q: want the runs of 127.0.0.%d (%s)", line, i, want)
			}
		}
		if runs != 4 || src.calls < 2 {
			t.Errorf("%d runs_total series over %d reads, want 4 (read after the reload)", runs, src.calls)
		}
	}
}

// TestAppendFloat: the text format's values as strconv's shortest 'g'
// writes them, which is how the Prometheus text encoder writes them.
func TestAppendFloat(t *testing.T) {
	vals := []float64{0, 1, -1, 2, 7, 60, 200, 503, 999999, -999999, 1e6, -1e6, 1e6 + 1, 123456.5, 0.5, 1e-3, 1.7e9, 1700000000.25,
		math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 53, -(1 << 62)}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 10000 {
		vals = append(vals, float64(rng.IntN(3_000_000)-1_500_000), rng.Float64()*1e7, float64(rng.IntN(100))/8)
	}
	for _, v := range vals {
		want := strconv.FormatFloat(v, 'g', -1, 64)
		switch {
		case math.IsNaN(v):
			want = "NaN"
		case math.IsInf(v, 1):
			want = "+Inf"
		case math.IsInf(v, -1):
			want = "-Inf"
		case v == 0:
			want = "0"
		}
		if got := string(AppendFloat(nil, v)); got != want {
			t.Errorf("AppendFloat(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestAppendEscapedLabelValueAsEscapeLabelValue(t *testing.T) {
	for _, v := range []string{"", "app", `a"b`, `back\slash`, "new\nline", `\"` + "\n\\", "ünïcode\t"} {
		if got, want := string(AppendEscapedLabelValue([]byte("x"), v)), "x"+EscapeLabelValue(v); got != want {
			t.Errorf("AppendEscapedLabelValue(%q) = %q, want %q", v, got, want)
		}
	}
}
