package scheduler

import (
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// A probe without a verdict counts as neither a success nor a failure.
func TestFailedExcludesUnknown(t *testing.T) {
	for _, tt := range []struct {
		r    prober.Result
		want bool
	}{
		{prober.Result{Success: true}, false},
		{prober.Result{Reason: prober.ReasonConnectionRefused}, true},
		{prober.Result{Unknown: true}, false},
	} {
		if got := failed(&tt.r); got != tt.want {
			t.Errorf("failed(%+v) = %v, want %v", tt.r, got, tt.want)
		}
	}
}
