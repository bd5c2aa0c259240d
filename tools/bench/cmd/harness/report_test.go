package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func soakSamples(d, every time.Duration, mbPerHour float64) []Sample {
	var out []Sample
	for i := 1; time.Duration(i)*every <= d; i++ {
		t := time.Duration(i) * every
		// ±1.5 MB of GC swing in the pattern +,-,-,+ (uncorrelated with t).
		noise := 1.5
		if i%4 == 1 || i%4 == 2 {
			noise = -1.5
		}
		mb := 40 + mbPerHour*t.Hours() + noise
		out = append(out, Sample{T: t, RSS: int64(mb * 1e6), HeapInuse: 15e6})
	}
	return out
}

func TestFlatness(t *testing.T) {
	for _, tc := range []struct {
		name      string
		d         time.Duration
		mbPerHour float64
		verdict   string
	}{
		{"flat hour", time.Hour, 0, "flat"},
		{"slow drift below the threshold", time.Hour, 1, "flat"},
		{"leak", time.Hour, 6, "GROWING"},
		{"falling", time.Hour, -5, "flat"},
		{"too short", 10 * time.Minute, 50, "no verdict"},
	} {
		fl := flatness(soakSamples(tc.d, 30*time.Second, tc.mbPerHour))
		if !strings.HasPrefix(fl.Verdict(), tc.verdict) {
			t.Errorf("%s: verdict %q (slope %.2f MB/h), want %q", tc.name, fl.Verdict(), fl.SlopeMBh, tc.verdict)
		}
		if tc.d == time.Hour && (fl.SlopeMBh < tc.mbPerHour-0.5 || fl.SlopeMBh > tc.mbPerHour+0.5) {
			t.Errorf("%s: slope %.2f MB/h, want %.0f", tc.name, fl.SlopeMBh, tc.mbPerHour)
		}
		if tc.d == time.Hour && tc.mbPerHour == 0 && (fl.SpreadMB < 2.9 || fl.SpreadMB > 3.1) {
			t.Errorf("%s: spread %.2f MB, want 3 (±1.5 MB)", tc.name, fl.SpreadMB)
		}
	}
	// Samples that land on a scrape read 12 MB more. When more of them
	// fall late in the window (as when the sampler's phase came back to
	// the scrapes' after 45 minutes), least squares reads growth; the
	// verdict must not, and must still see a leak under them.
	spiked := func(mbPerHour float64) []Sample {
		s := soakSamples(time.Hour, 30*time.Second, mbPerHour)
		for i := range s {
			if i >= 90 && i%6 == 0 {
				s[i].RSS += 12e6
			}
		}
		return s
	}
	if fl := flatness(spiked(0)); fl.Verdict() != "flat" || fl.LeastSquaresMBh <= flatSlopeMBh {
		t.Errorf("late scrape spikes, no leak: %q, Theil–Sen %+.2f, least squares %+.2f MB/h (want flat, and least squares above %.0f for the case to mean anything)",
			fl.Verdict(), fl.SlopeMBh, fl.LeastSquaresMBh, flatSlopeMBh)
	}
	if fl := flatness(spiked(6)); fl.Verdict() != "GROWING" {
		t.Errorf("late scrape spikes over a 6 MB/h leak: %q (Theil–Sen %+.2f MB/h)", fl.Verdict(), fl.SlopeMBh)
	}
	if v := flatness(nil).Verdict(); v != "too few samples" {
		t.Errorf("no samples: %q", v)
	}
}

func TestSignalCheckProblems(t *testing.T) {
	ok := SignalCheck{Failing: true, LogMatched: 10, LogLines: 12, NginxUp: 1, CapacityRows: 5, Reloads: 2, ReloadsSeen: 1}
	if p := ok.problems(); len(p) != 0 {
		t.Fatalf("all live: %v", p)
	}
	for name, broken := range map[string]func(*SignalCheck){
		"error log":     func(s *SignalCheck) { s.LogMatched = 0 },
		"no log line":   func(s *SignalCheck) { s.LogMatched, s.LogLines = 0, 0 },
		"nginx_up":      func(s *SignalCheck) { s.NginxUp = 0 },
		"no nginx_up":   func(s *SignalCheck) { s.NginxUp = -1 },
		"saturation":    func(s *SignalCheck) { s.CapacityRows = 0 },
		"reloads_total": func(s *SignalCheck) { s.ReloadsSeen = 0 },
	} {
		s := ok
		broken(&s)
		if p := s.problems(); len(p) != 1 {
			t.Errorf("%s broken: problems %v, want one", name, p)
		}
	}
	// No failing target: nginx logs no upstream error, only other lines.
	healthy := ok
	healthy.Failing, healthy.LogMatched = false, 0
	if p := healthy.problems(); len(p) != 0 {
		t.Errorf("no failing target, other lines read: %v", p)
	}
}

func TestQuarters(t *testing.T) {
	// 40 samples over 40 minutes: quarter q reads 40+q MB, with one
	// sample 10 MB higher in the last quarter; a leak shows in the least
	// of each quarter, a passing event in the greatest only.
	var s []Sample
	for i := 1; i <= 40; i++ {
		mb := 40 + float64((i-1)/10)
		if i == 35 {
			mb += 10
		}
		s = append(s, Sample{T: time.Duration(i) * time.Minute, RSS: int64(mb * 1e6)})
	}
	got := quarters(s)
	want := []quarter{
		{"0-10", "40.0 / 40.0 / 40.0"},
		{"10-20", "40.0 / 41.0 / 41.0"}, // minute 10 is the first quarter's last sample
		{"20-30", "41.0 / 42.0 / 42.0"},
		{"30-40", "42.0 / 43.0 / 53.0"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("quarters:\n got %v\nwant %v", got, want)
	}
	if q := quarters(s[:7]); q != nil {
		t.Errorf("7 samples: %v, want none", q)
	}
}
