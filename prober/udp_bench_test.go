package prober

import (
	"net"
	"testing"
)

// BenchmarkProbeUDP: one probe of an answering UDP server.
func BenchmarkProbeUDP(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte("pong"), from)
		}
	}()
	b.Cleanup(func() { pc.Close(); <-done })
	b.Run("answer", func(b *testing.B) {
		benchProbe(b, udpPeer("udp", pc.LocalAddr().String()))
	})
	// A closed port is not benchmarked in a loop: Linux sends at most
	// net.ipv4.icmp_msgs_per_sec ICMP errors a second (1000, burst 50)
	// even on loopback, so past that the probe reads silence (no
	// verdict), which TestUDPProbe checks at a single probe.
}
