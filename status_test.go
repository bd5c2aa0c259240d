package main

import (
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/loadstate"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
)

// Without a capacity monitor or a known stale address the page says so
// plainly and invents nothing.
func TestStatusFactsWithNothingKnown(t *testing.T) {
	if capacityFacts(nil) != nil {
		t.Error("capacity facts without a monitor")
	}
	tr := loadstate.New(loadstate.Options{})
	if f := staleFacts(tr)(nil, discovery.Key{Upstream: "app", Server: "app.test:3000"}); f != nil {
		t.Errorf("stale fact without knowledge: %+v", f)
	}
	facts := problemCounts(nil, tr)()
	if len(facts) != 1 || facts[0].Name != "stale" || facts[0].State != report.FactUnknown {
		t.Errorf("summary facts = %+v", facts)
	}
	if got := nonNil(nil, staleFacts(tr), nil); len(got) != 1 {
		t.Errorf("nonNil kept %d sources", len(got))
	}
}
