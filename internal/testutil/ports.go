package testutil

import (
	"fmt"
	"net"
	"testing"
)

// Listen is net.Listen, or a listen that opens the socket in another
// network namespace.
type Listen func(network, address string) (net.Listener, error)

// PickPort returns a TCP port on 127.0.0.1 that listen could bind a moment
// ago, for a process started later that must be told its port. Another
// process may take it in between: prefer passing a listener where the code
// under test accepts one.
func PickPort(listen Listen) (int, error) {
	l, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("picking a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePort is PickPort(net.Listen), failing the test on error.
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := PickPort(net.Listen)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// FreeAddr is "127.0.0.1:PORT" of FreePort.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
}
