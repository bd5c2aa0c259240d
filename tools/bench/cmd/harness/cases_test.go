package main

import (
	"testing"
	"time"
)

// TestSuiteSignals checks which cases run with every signal on: the
// 10,000-target cases and the soak, as deployed; the 1k cases measure the
// probing alone; an explicit -signals wins.
func TestSuiteSignals(t *testing.T) {
	for _, k := range suiteCases("standard", Case{}) {
		want := SignalsProbes
		if k.Targets >= 10000 {
			want = SignalsAll
		}
		if k.Signals != want {
			t.Errorf("standard %q: signals %q, want %q", k.Name, k.Signals, want)
		}
	}
	soak := suiteCases("soak", Case{})
	if len(soak) != 1 {
		t.Fatalf("soak suite: %d cases", len(soak))
	}
	if k := soak[0]; k.Signals != SignalsAll || !k.Soak || k.Targets != 10000 || k.Refuse != 0.25 || k.Hang != 0.25 {
		t.Errorf("soak case %+v: want 10,000 targets, a quarter refusing, a quarter hanging, every signal on", k)
	}
	for _, k := range suiteCases("standard", Case{Signals: SignalsProbes}) {
		if k.Signals != SignalsProbes {
			t.Errorf("-signals probes, standard %q: signals %q", k.Name, k.Signals)
		}
	}
}

func TestSampleTimes(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	every := 30 * time.Second
	// randN as a sequence of fractions of the period: first, last and
	// middle moments of a period all stay inside it.
	fracs := []float64{0, 0.999, 0.5, 0.1}
	var calls int
	randN := func(n int64) int64 {
		f := fracs[calls%len(fracs)]
		calls++
		return int64(f * float64(n))
	}
	var got []time.Time
	for at := range sampleTimes(t0, t0.Add(time.Hour), every, randN) {
		got = append(got, at)
	}
	if len(got) != 120 {
		t.Fatalf("%d samples in an hour at 30 s, want 120", len(got))
	}
	for k, at := range got {
		from := t0.Add(time.Duration(k) * every)
		if at.Before(from) || !at.Before(from.Add(every)) {
			t.Errorf("sample %d at %s, outside its period [%s, %s)", k, at.Sub(t0), from.Sub(t0), from.Add(every).Sub(t0))
		}
	}
	// The offsets within the period are randN's, not a fixed step: a
	// sampler that drifts or stands still in phase fails this.
	if off := got[1].Sub(t0.Add(every)); off < 29*time.Second {
		t.Errorf("second sample %s into its period, want randN's 29.97 s", off)
	}
	var short []time.Time
	for at := range sampleTimes(t0, t0.Add(10*time.Second), every, func(n int64) int64 { return n / 2 }) {
		short = append(short, at)
	}
	if len(short) != 1 || short[0] != t0.Add(5*time.Second) {
		t.Errorf("a window shorter than the period: %v, want one sample at 5 s", short)
	}
}
