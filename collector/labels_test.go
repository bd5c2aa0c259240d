package collector

import (
	"testing"
	"unsafe"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// The labels discovery renders when it builds a target are exactly what
// the collector renders for a target built by hand with the same key, and
// TargetLabels hands out that one string rather than a copy.
func TestTargetLabelsOfBuiltTargets(t *testing.T) {
	for _, upstream := range []string{"", "app", "odd\"up\\stream\nname"} {
		built, err := discovery.Arbitrary("127.0.0.1:8080", upstream, protocol.Kind{Protocol: protocol.HTTP, TLS: true}, discovery.Options{})
		if err != nil {
			t.Fatal(err)
		}
		byHand := &discovery.Target{Key: built.Key}
		got, want := TargetLabels(built), TargetLabels(byHand)
		if got != want {
			t.Errorf("built target's labels\n got %s\nwant %s", got, want)
		}
		if unsafe.StringData(got) != unsafe.StringData(built.Labels()) {
			t.Errorf("%q: TargetLabels copied the target's labels", upstream)
		}
	}
}
