package collector

import (
	"io"
	"testing"
	"unsafe"
)

// TestInfoLabelsInterned checks that targets with the same parameters
// share one rendered info string, and that different parameters do not.
func TestInfoLabelsInterned(t *testing.T) {
	src := fixture() // healthy and notYet: defaults; tls: other parameters
	tw := NewTextWriter(src)
	if _, err := tw.WriteTo(io.Discard); err != nil {
		t.Fatal(err)
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	healthy, notYet, secure := tw.labels[src[0].Target], tw.labels[src[3].Target], tw.labels[src[2].Target]
	if healthy.info != notYet.info || !same(healthy.info, notYet.info) {
		t.Errorf("equal parameters do not share their info string: %q %q", healthy.info, notYet.info)
	}
	if healthy.info == secure.info {
		t.Errorf("different parameters render alike: %q", secure.info)
	}
	// Three distinct parameter sets among five targets: defaults
	// (healthy, failing, notYet), the backup of "secure", and down.
	if n := len(tw.infos); n != 3 {
		t.Errorf("%d interned info strings, want 3", n)
	}
}
