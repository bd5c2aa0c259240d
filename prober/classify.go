package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// outcome is what protocol code saw go wrong, in its own terms. Protocol
// code reports outcomes; only classify turns them into the reason nginx
// would log, so that one function names every reason.
type outcome uint8

const (
	// outcomeError: a dial, handshake, read or write returned an error;
	// the errno (or the error's type) and the phase tell the reason.
	outcomeError outcome = iota
	// outcomeBufferFull: the response header did not fit *_buffer_size
	// ("upstream sent too big header").
	outcomeBufferFull
	// outcomeInvalidHeader: the header, record or frame is malformed in
	// our protocol ("upstream sent invalid header"), unless the bytes are
	// another protocol's.
	outcomeInvalidHeader
	// outcomeForeign: the bytes cannot be our protocol's at all (a
	// FastCGI record that does not parse: "upstream sent unsupported
	// FastCGI protocol version").
	outcomeForeign
	// outcomeStreamClosed: the protocol's own stream ended before the
	// header (an empty FastCGI stdout record, END_REQUEST first:
	// "upstream prematurely closed FastCGI stdout").
	outcomeStreamClosed
	// outcomeRejected: the peer refused the request within the protocol
	// (HTTP/2 RST_STREAM or GOAWAY, which nginx's grpc module logs as
	// "upstream rejected request").
	outcomeRejected
	// outcomeUnexpectedStatus: the status is not one the exporter's
	// configuration expects (expect_status). nginx would pass it on.
	outcomeUnexpectedStatus
	// outcomeCertificate: the peer's certificate failed proxy_ssl_verify
	// ("upstream SSL certificate verify error", "does not match").
	outcomeCertificate
	// outcomeClientCertificate: proxy_ssl_certificate cannot be loaded,
	// so the handshake cannot offer it.
	outcomeClientCertificate
	// outcomeNoAnswer: a datagram socket stayed silent, neither an answer
	// nor an ICMP error, until the wait ended (udp.go): no verdict.
	outcomeNoAnswer
)

// event is one failure as protocol code saw it.
type event struct {
	outcome outcome
	phase   Phase
	err     error
	// deadline: the probe's own deadline had passed when it failed, so
	// the exporter, not nginx's timer, ended the wait.
	deadline bool
	// got holds the first bytes the backend sent, so that a backend
	// speaking another protocol is named for what it speaks.
	got []byte
	// self is the sniff name of the protocol we speak: its own bytes are
	// never "another protocol".
	self   string
	detail string
}

// fail records e's reason, detail and cause in r, or that the probe gave
// no verdict.
func (r *Result) fail(e event) {
	if cause := inconclusive(e); cause != "" {
		r.Success = false
		r.Reason = ReasonNone
		r.Err = e.err
		r.Detail = e.detail
		r.Inconclusive = cause
		return
	}
	reason, detail := classify(e)
	r.Fail(reason, e.err)
	r.Detail = detail
}

// inconclusive says when a failure is the exporter's own and tells
// nothing about the backend. nginx never logs these for the backend, so
// reporting them as a reason (connection_refused for "too many open
// files", read_timeout for our own deadline) would be a verdict nginx
// would not have.
func inconclusive(e event) Inconclusive {
	if e.outcome == outcomeNoAnswer {
		return InconclusiveNoAnswer
	}
	if e.outcome != outcomeError || e.err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(e.err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL:
			return InconclusiveExporterResources
		}
	}
	if e.deadline && isTimeout(e.err) {
		return InconclusiveProbeTimeout
	}
	return ""
}

// classify is the one place that names the reason of a failure: every
// Reason constant is chosen here, from the outcome protocol code reported,
// the errno and the phase, exactly as nginx's error-log message for it
// depends on the system call's error and on the action nginx was doing
// ("while connecting to upstream", "while SSL handshaking to upstream",
// "while reading response header from upstream").
func classify(e event) (Reason, string) {
	switch e.outcome {
	case outcomeBufferFull:
		return ReasonHeaderTooBig, e.detail
	case outcomeInvalidHeader:
		if s := foreign(e.got, e.self); s != "" {
			return ReasonProtocolMismatch, "backend speaks " + s
		}
		return ReasonInvalidResponse, e.detail
	case outcomeForeign:
		if s := foreign(e.got, e.self); s != "" {
			return ReasonProtocolMismatch, "backend speaks " + s
		}
		return ReasonProtocolMismatch, "backend does not speak " + e.self
	case outcomeStreamClosed:
		return ReasonPrematureClose, e.detail
	case outcomeRejected, outcomeUnexpectedStatus:
		return ReasonInvalidResponse, e.detail
	case outcomeCertificate:
		return ReasonTLSCertificateInvalid, e.detail
	case outcomeClientCertificate:
		return ReasonTLSHandshakeFailed, e.detail
	}
	err := e.err
	if errors.Is(err, errBufferFull) {
		// A framed reader (HTTP/2) ran past the header buffer.
		return ReasonHeaderTooBig, e.detail
	}
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) {
		// OpenSSL: "wrong version number": the backend answered the
		// ClientHello in plain text.
		if s := sniff(rhe.RecordHeader[:]); s != "" {
			return ReasonProtocolMismatch, "backend speaks " + s
		}
		return ReasonProtocolMismatch, "backend answered the TLS handshake in plain text"
	}
	if isTLSAlert(err) {
		// A TLS 1.3 server rejects a missing client certificate after
		// the client's handshake completed, so the alert may arrive on
		// the first read: nginx still logs it as an SSL failure.
		return ReasonTLSHandshakeFailed, e.detail
	}
	reason := Classify(err, e.phase)
	if reason == ReasonPrematureClose || reason == ReasonConnectionReset {
		if s := foreign(e.got, e.self); s != "" {
			return ReasonProtocolMismatch, "backend speaks " + s
		}
	}
	return reason, e.detail
}

// foreign names the protocol of the backend's bytes when it is not ours.
func foreign(got []byte, self string) string {
	if s := sniff(got); s != "" && s != self {
		return s
	}
	return ""
}

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

// isTLSAlert reports an alert received from a TLS peer.
func isTLSAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
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
