package main

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// The whole-binary tests live in e2e/; the tests here run the exporter's
// parts in this process.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// In-process servers (serve, /probe, diagnose) must leave no
		// goroutine behind; keep-alive connections of the test's own
		// HTTP client are not the exporter's.
		if err := goleak.Find(goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop")); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
