// Reporting: one markdown table row per metric, medians over runs.

package main

import (
	"fmt"
	"slices"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/procstat"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

const tableHeader = `| case | metric | exporter | floor | exporter/floor | target |
|---|---|---:|---:|---:|---|
`

func tableRows(c Case, r Result) string {
	var b strings.Builder
	e, f := r.Exporter, r.Floor
	row := func(metric, ev, fv, ratio, target string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.Name, metric, ev, fv, ratio, target)
	}
	num := func(ran bool, v float64, format string) string {
		if !ran || v != v {
			return "–"
		}
		return fmt.Sprintf(format, v)
	}
	ratio := func(a, b float64) string {
		if !e.Ran || !f.Ran || b == 0 || a != a || b != b {
			return "–"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	if c.Closed {
		row("probes/s (closed loop)", num(e.Ran, e.Rate(), "%.0f"), num(f.Ran, f.Rate(), "%.0f"), ratio(e.Rate(), f.Rate()), "exporter ≥ 10,000/s")
		row("CPU ms per probe", num(e.Ran, e.CPUPer1k(), "%.3f"), num(f.Ran, f.CPUPer1k(), "%.3f"), ratio(e.CPUPer1k(), f.CPUPer1k()), "")
	} else {
		tgt := ""
		switch {
		case c.Targets >= 10000 && c.Signals == SignalsAll:
			tgt = "≤ 1.05× (every signal on)"
		case len(c.Mix) == 1 || c.Targets >= 10000:
			tgt = "≤ 1.2×"
		}
		row("CPU s per 1,000 probes", num(e.Ran, e.CPUPer1k(), "%.3f"), num(f.Ran, f.CPUPer1k(), "%.3f"), ratio(e.CPUPer1k(), f.CPUPer1k()), tgt)
		row("probes/s", num(e.Ran, e.Rate(), "%.1f"), num(f.Ran, f.Rate(), "%.1f"), ratio(e.Rate(), f.Rate()), "")
		lt := ""
		if c.Targets >= 10000 {
			lt = "p99 < 1 s"
		}
		row("schedule lag p50 / p99 (ms)", lagStr(e), lagStr(f), "", lt)
	}
	rt := ""
	if c.Targets >= 10000 {
		rt = "≤ 48 MB"
	}
	row("RSS max (MB)", num(e.Ran, float64(e.RSSMax)/1e6, "%.1f"), num(f.Ran, float64(f.RSSMax)/1e6, "%.1f"), ratio(float64(e.RSSMax), float64(f.RSSMax)), rt)
	if c.Soak {
		drift := func(s Side) string {
			if !s.Ran {
				return "–"
			}
			return fmt.Sprintf("%.1f → %.1f", float64(s.RSS0)/1e6, float64(s.RSSEnd)/1e6)
		}
		row("RSS window start → end (MB)", drift(e), drift(f), "", "flat")
		if e.Ran {
			row("goroutines window start → end", fmt.Sprintf("%.0f → %.0f", e.Goroutines0, e.Goroutines1), "", "", "flat")
		}
	}
	if c.Soak && e.Ran && len(e.Samples) > 0 {
		fl := flatness(e.Samples)
		row("RSS slope, second half (MB/h): Theil–Sen / least squares; max − min (MB)", fmt.Sprintf("%+.2f / %+.2f; %.1f", fl.SlopeMBh, fl.LeastSquaresMBh, fl.SpreadMB), "", "", fmt.Sprintf("Theil–Sen ≤ %.0f MB/h: %s", flatSlopeMBh, fl.Verdict()))
		row("heap in use slope, second half (MB/h, Theil–Sen)", fmt.Sprintf("%+.2f", fl.HeapSlopeMBh), "", "", "")
		for _, q := range quarters(e.Samples) {
			row(fmt.Sprintf("RSS min / median / max, minutes %s (MB)", q.span), q.stats, "", "", "")
		}
	}
	sig := "probes + saturation"
	if c.Signals == SignalsAll {
		sig = "all"
		if e.Signals != nil {
			sig = "all: " + e.Signals.String()
		}
	}
	row("signals on", sig, "", "", "")
	for _, pt := range e.Pages {
		enc := ""
		if pt.Compressed {
			enc = " gzip"
		}
		row(fmt.Sprintf("%s during the window%s: median / max ms (n=%d), KB", pt.Path, enc, pt.N),
			fmt.Sprintf("%.1f / %.1f, %.0f KB", pt.P50, pt.Max, float64(pt.Bytes)/1e3), "", "", "")
		if pt.Errs > 0 {
			row(pt.Path+" errors during the window", fmt.Sprintf("%d", pt.Errs), "", "", "0")
		}
	}
	fail := func(s Side) string { return num(s.Ran, 100*s.Failures/max(s.Probes, 1), "%.1f %%") }
	row("failed probes", fail(e), fail(f), "", "")
	if e.Ran {
		st := ""
		if c.Targets >= 10000 {
			st = "≤ 50 / ≤ 30 ms"
		}
		row(fmt.Sprintf("/metrics ms, gzip / plain (%d series)", e.Series), fmt.Sprintf("%.1f / %.1f", e.ScrapeMs, e.ScrapePlainMs), "", "", st)
	}
	return b.String()
}

func lagStr(s Side) string {
	if !s.Ran {
		return "–"
	}
	return fmt.Sprintf("%.2f / %.2f", s.LagP50*1000, s.LagP99*1000)
}

func median(rs []Result) Result {
	if len(rs) == 1 {
		return rs[0]
	}
	pick := func(get func(Result) Side) Side {
		var sides []Side
		for _, r := range rs {
			sides = append(sides, get(r))
		}
		m := sides[0]
		f := func(g func(Side) float64) float64 {
			var v []float64
			for _, s := range sides {
				v = append(v, g(s))
			}
			return medianF(v)
		}
		// CPU and probes are medians of the per-run ratios, carried as
		// CPU over a fixed 1,000,000-probe count so Rate/CPUPer1k still work.
		cpu := f(func(s Side) float64 { return s.CPUPer1k() })
		rate := f(func(s Side) float64 { return s.Rate() })
		m.Window = time.Second
		m.Probes = rate
		m.CPU = time.Duration(cpu / 1000 * rate * float64(time.Second))
		m.Failures = f(func(s Side) float64 { return s.Failures / max(s.Probes, 1) }) * rate
		m.RSSMax = int64(f(func(s Side) float64 { return float64(s.RSSMax) }))
		m.LagP50 = f(func(s Side) float64 { return s.LagP50 })
		m.LagP99 = f(func(s Side) float64 { return s.LagP99 })
		m.ScrapeMs = f(func(s Side) float64 { return s.ScrapeMs })
		m.ScrapePlainMs = f(func(s Side) float64 { return s.ScrapePlainMs })
		return m
	}
	return Result{Exporter: pick(func(r Result) Side { return r.Exporter }), Floor: pick(func(r Result) Side { return r.Floor })}
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func describeMachine(o options) string {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	gover, _ := exec.Command("go", "env", "GOVERSION").Output()
	return fmt.Sprintf("Machine: %d CPUs (%s), %s. Window %s per run, %d run(s), medians. tcp targets (memcached_pass) probed by the floor as: %s. "+
		"The floor offers nginx's TLS key-exchange groups (X25519, P-256, P-384, P-521), as the exporter's prober does.",
		numCPU(), cpu, strings.TrimSpace(string(gover)), o.duration, o.runs, o.tcpProbe)
}

func numCPU() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}

// The soak's verdict: RSS grows when its slope over the second half of
// the window exceeds flatSlopeMBh. The slope is Theil–Sen's (the median of
// the slopes between every two samples), not least squares': a sample
// that lands while /metrics, / and /api/v1/targets are being served reads
// 6-15 MB more than one between them, about one sample in eight does, and
// a dozen of those among 60 move a least-squares slope by several MB/h
// either way although nothing accumulates. A leak raises every sample,
// and the median slope follows it. With RSS swinging by a couple of MB
// between garbage collections and a sample every 30 s, noise stays
// below 1 MB/h over half an hour: below 2 MB/h noise cannot be told from
// a leak. A second half shorter than minVerdictHalf says nothing about
// hours.
const (
	flatSlopeMBh   float64 = 2
	minVerdictHalf         = 10 * time.Minute
)

// Flatness is the soak verdict: the slopes of RSS (and of the heap in
// use) over the second half of the window, where start-up growth is over,
// and the spread of RSS there.
type Flatness struct {
	// SlopeMBh and HeapSlopeMBh are Theil–Sen slopes; SlopeMBh decides.
	SlopeMBh, HeapSlopeMBh float64
	// LeastSquaresMBh is RSS's least-squares slope, for comparison.
	LeastSquaresMBh float64
	SpreadMB        float64
	Half            time.Duration
}

// Verdict is "flat", "growing" or why there is none.
func (f Flatness) Verdict() string {
	switch {
	case f.SlopeMBh != f.SlopeMBh:
		return "too few samples"
	case f.Half < minVerdictHalf:
		return fmt.Sprintf("no verdict: second half %s < %s", f.Half.Round(time.Second), minVerdictHalf)
	case f.SlopeMBh > flatSlopeMBh:
		return "GROWING"
	}
	return "flat"
}

func flatness(samples []Sample) Flatness {
	if len(samples) == 0 {
		return Flatness{SlopeMBh: nanF(), HeapSlopeMBh: nanF(), LeastSquaresMBh: nanF()}
	}
	half := samples[len(samples)-1].T / 2
	var x, rss, heap []float64
	lo, hi := 1e300, -1e300
	for _, s := range samples {
		if s.T < half {
			continue
		}
		mb := float64(s.RSS) / 1e6
		x = append(x, s.T.Hours())
		rss = append(rss, mb)
		heap = append(heap, s.HeapInuse/1e6)
		lo, hi = min(lo, mb), max(hi, mb)
	}
	return Flatness{SlopeMBh: procstat.TheilSen(x, rss), HeapSlopeMBh: procstat.TheilSen(x, heap),
		LeastSquaresMBh: procstat.Slope(x, rss), SpreadMB: hi - lo, Half: samples[len(samples)-1].T - half}
}

func nanF() float64 { return procstat.Slope(nil, nil) }

// samplesTable is the soak's time series, after the main table.
func samplesTable(c Case, s Side) string {
	if !c.Soak || len(s.Samples) == 0 {
		return ""
	}
	var b strings.Builder
	fl := flatness(s.Samples)
	fmt.Fprintf(&b, "\n%s: exporter samples. RSS over the second half: slope %+.2f MB/h (Theil–Sen; least squares %+.2f), max − min %.1f MB: %s.\n\n",
		c.Name, fl.SlopeMBh, fl.LeastSquaresMBh, fl.SpreadMB, fl.Verdict())
	b.WriteString("| t | RSS MB | heap in use MB | next GC MB | goroutines | open fds |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range s.Samples {
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %.0f | %d |\n", x.T.Round(time.Second), float64(x.RSS)/1e6, x.HeapInuse/1e6, x.NextGC/1e6, x.Goroutines, x.FDs)
	}
	return b.String()
}

// quarter is one quarter of the soak's samples, for the report: a leak
// raises the least RSS of each quarter over the one before, a passing
// event only the greatest.
type quarter struct{ span, stats string }

func quarters(samples []Sample) []quarter {
	if len(samples) < 8 {
		return nil
	}
	end := samples[len(samples)-1].T
	var out []quarter
	for q := range 4 {
		from, to := end*time.Duration(q)/4, end*time.Duration(q+1)/4
		var mb []float64
		for _, s := range samples {
			if s.T >= from && (s.T < to || q == 3) {
				mb = append(mb, float64(s.RSS)/1e6)
			}
		}
		if len(mb) == 0 {
			continue
		}
		slices.Sort(mb)
		out = append(out, quarter{
			span:  fmt.Sprintf("%.0f-%.0f", from.Minutes(), to.Minutes()),
			stats: fmt.Sprintf("%.1f / %.1f / %.1f", mb[0], mb[len(mb)/2], mb[len(mb)-1]),
		})
	}
	return out
}
