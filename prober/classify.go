package prober

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Classify maps an error seen during phase p to the reason nginx would log.
// A timeout means different things per phase (connect_timeout,
// tls_handshake_timeout, read_timeout), exactly as nginx's
// "upstream timed out ... while <action>" does.
func Classify(err error, p Phase) Reason {
	if err == nil {
		return ReasonNone
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ReasonDNSError
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNREFUSED:
			return ReasonConnectionRefused
		case syscall.ENOENT, syscall.ENOTDIR:
			return ReasonSocketNotFound
		case syscall.EACCES, syscall.EPERM:
			return ReasonPermissionDenied
		case syscall.EAGAIN:
			return ReasonBacklogFull
		case syscall.EHOSTUNREACH:
			return ReasonNoRouteToHost
		case syscall.ENETUNREACH:
			return ReasonNetworkUnreachable
		case syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED:
			return ReasonConnectionReset
		case syscall.ETIMEDOUT:
			return timeoutReason(p)
		}
	}
	if isTimeout(err) {
		return timeoutReason(p)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if p == PhaseTLS {
			// "peer closed connection in SSL handshake"
			return ReasonTLSHandshakeFailed
		}
		return ReasonPrematureClose
	}
	switch p {
	case PhaseResolve:
		return ReasonDNSError
	case PhaseTLS:
		return ReasonTLSHandshakeFailed
	case PhaseConnect:
		// An unexpected connect error (e.g. EADDRNOTAVAIL) still means
		// nginx could not connect; refused is the closest nginx wording.
		return ReasonConnectionRefused
	}
	return ReasonInvalidResponse
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func timeoutReason(p Phase) Reason {
	switch p {
	case PhaseResolve:
		return ReasonDNSError
	case PhaseConnect:
		return ReasonConnectTimeout
	case PhaseTLS:
		return ReasonTLSHandshakeTimeout
	}
	return ReasonReadTimeout
}
