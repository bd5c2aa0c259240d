package report

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// TestScratchDescribesAsFromStatus: describing targets one after the
// other into one Scratch gives, each time, what FromStatus gives, with
// nothing left over from the target described before.
func TestScratchDescribesAsFromStatus(t *testing.T) {
	finished := time.Date(2026, 11, 27, 3, 0, 0, 0, time.FixedZone("x", 3600))
	tlsTarget := target(false, false)
	tlsTarget.Probe = &prober.Peer{Network: "tcp", TLS: &prober.TLSSettings{Verify: true, ServerName: "app.example", Certificate: "/k"}}
	var phases [len(prober.PhaseNames)]time.Duration
	phases[prober.PhaseConnect] = 300 * time.Microsecond
	statuses := []scheduler.Status{
		{Target: target(false, false), HasResult: true, Finished: finished, Runs: 3,
			Result: prober.Result{Reason: prober.ReasonConnectionRefused, Err: errors.New("refused"), Detail: "d", Address: "10.9.9.9:80", Phases: phases}},
		{Target: target(false, false), HasResult: true, Finished: finished, Runs: 4, Result: prober.Result{Success: true, HTTPStatus: 204}},
		{Target: tlsTarget, HasResult: true, Finished: finished, Runs: 1,
			Result: prober.Result{Success: true, TLSNotAfter: finished.Add(time.Hour), Duration: time.Millisecond}},
		{Target: target(true, false), HasResult: true, Finished: finished,
			Result: prober.Result{Inconclusive: prober.InconclusiveProbeTimeout, Err: errors.New("deadline")}},
		{Target: target(false, false)},
		{Target: target(false, true)},
		{Target: tlsTarget, HasResult: true, Result: prober.Result{Reason: prober.ReasonTLSHandshakeFailed}},
	}
	var sc Scratch
	for round := range 2 {
		for i := range statuses {
			want := FromStatus(&statuses[i], 2, VerdictPending)
			got := sc.Describe(&statuses[i], 2, VerdictPending)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("round %d, status %d:\n got %+v\nwant %+v", round, i, *got, want)
			}
			wb, _ := json.Marshal(&want)
			gb, _ := json.Marshal(got)
			if string(gb) != string(wb) {
				t.Errorf("round %d, status %d: JSON\n got %s\nwant %s", round, i, gb, wb)
			}
			if v, r := VerdictOf(&statuses[i], VerdictPending); v != want.Verdict || r != want.Reason {
				t.Errorf("status %d: VerdictOf = %q %q, want %q %q", i, v, r, want.Verdict, want.Reason)
			}
			var a, b Summary
			v, r := VerdictOf(&statuses[i], VerdictPending)
			if a.Count(&want) != b.CountVerdict(v, r, want.Backup) || a != b {
				t.Errorf("status %d: CountVerdict counts otherwise than Count: %+v, %+v", i, b, a)
			}
		}
		// Facts and the log belong to the target they were added to.
		sc.Describe(&statuses[0], 2, VerdictPending)
		sc.AddFacts([]Fact{{Source: "s", Name: "n", Value: "v", State: FactOK}})
		sc.SetLogged(&Logged{Errors: map[string]int{"x": 1}})
	}
}

// TestPhasesJSONAsMap: Phases encode byte for byte as a map[string]float64.
func TestPhasesJSONAsMap(t *testing.T) {
	for _, p := range []Phases{
		nil,
		{},
		{"connect": 0.0003, "tls": 0, "processing": 1.5, "transfer": 1e-7, "resolve": 3e-10},
		{"connect": 1e21, "tls": 123456.789, "processing": -2, "transfer": 1e-6, "resolve": 0.000001234},
		{"odd key<&>": 1, "connect": 2},
	} {
		want, werr := json.Marshal(map[string]float64(p))
		got, gerr := json.Marshal(p)
		if string(got) != string(want) || (werr == nil) != (gerr == nil) {
			t.Errorf("%v: got %s (%v), want %s (%v)", p, got, gerr, want, werr)
		}
		var s struct {
			P Phases `json:"p,omitempty"`
		}
		s.P = p
		want, _ = json.Marshal(struct {
			P map[string]float64 `json:"p,omitempty"`
		}{p})
		if got, _ := json.Marshal(&s); string(got) != string(want) {
			t.Errorf("%v in a struct: got %s, want %s", p, got, want)
		}
	}
}
