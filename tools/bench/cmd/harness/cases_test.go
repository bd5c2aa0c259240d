package main

import "testing"

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
