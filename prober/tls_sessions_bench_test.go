package prober

import "testing"

// BenchmarkProbeHTTPSResumed is BenchmarkProbeHTTPS with session reuse on,
// as nginx's default: ten of every eleven handshakes resume.
func BenchmarkProbeHTTPSResumed(b *testing.B) {
	srv := httpsOK(b)
	tg := srv.target("https")
	tg.TLS.SessionReuse = true
	benchProbe(b, tg)
}
