package prober

import (
	"crypto/tls"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func connErr(errno syscall.Errno) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
}

// TestClassifyNamesEveryReason is the table of what happened → reason:
// every reason of the vocabulary has at least one row, and the details
// name the protocol a foreign backend speaks.
func TestClassifyNamesEveryReason(t *testing.T) {
	tlsRecord := tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}
	copy(tlsRecord.RecordHeader[:], "HTTP/")
	tests := []struct {
		name       string
		e          event
		want       Reason
		wantDetail string
	}{
		{"dns error", event{phase: PhaseResolve, err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}, ReasonDNSError, ""},
		{"resolver timeout", event{phase: PhaseResolve, err: os.ErrDeadlineExceeded}, ReasonDNSError, ""},
		{"refused", event{phase: PhaseConnect, err: connErr(syscall.ECONNREFUSED)}, ReasonConnectionRefused, ""},
		{"no socket", event{phase: PhaseConnect, err: connErr(syscall.ENOENT)}, ReasonSocketNotFound, ""},
		{"socket path not a directory", event{phase: PhaseConnect, err: connErr(syscall.ENOTDIR)}, ReasonSocketNotFound, ""},
		{"permission", event{phase: PhaseConnect, err: connErr(syscall.EACCES)}, ReasonPermissionDenied, ""},
		{"backlog", event{phase: PhaseConnect, err: connErr(syscall.EAGAIN)}, ReasonBacklogFull, ""},
		{"no route", event{phase: PhaseConnect, err: connErr(syscall.EHOSTUNREACH)}, ReasonNoRouteToHost, ""},
		{"unreachable", event{phase: PhaseConnect, err: connErr(syscall.ENETUNREACH)}, ReasonNetworkUnreachable, ""},
		{"connect timeout", event{phase: PhaseConnect, err: os.ErrDeadlineExceeded}, ReasonConnectTimeout, ""},
		{"connect ETIMEDOUT", event{phase: PhaseConnect, err: connErr(syscall.ETIMEDOUT)}, ReasonConnectTimeout, ""},
		{"handshake timeout", event{phase: PhaseTLS, err: os.ErrDeadlineExceeded}, ReasonTLSHandshakeTimeout, ""},
		{"handshake EOF", event{phase: PhaseTLS, err: io.EOF}, ReasonTLSHandshakeFailed, ""},
		{"handshake alert", event{phase: PhaseTLS, err: &net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}}, ReasonTLSHandshakeFailed, ""},
		{"alert on first read (TLS 1.3 client certificate)", event{phase: PhaseProcessing, err: &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}}, ReasonTLSHandshakeFailed, ""},
		{"client certificate file", event{outcome: outcomeClientCertificate, phase: PhaseTLS, err: os.ErrNotExist, detail: "cannot load proxy_ssl_certificate"}, ReasonTLSHandshakeFailed, "cannot load proxy_ssl_certificate"},
		{"certificate", event{outcome: outcomeCertificate, phase: PhaseTLS, err: errCertVerify, detail: "x"}, ReasonTLSCertificateInvalid, "x"},
		{"reset", event{phase: PhaseProcessing, err: connErr(syscall.ECONNRESET)}, ReasonConnectionReset, ""},
		{"broken pipe", event{phase: PhaseProcessing, err: connErr(syscall.EPIPE)}, ReasonConnectionReset, ""},
		{"eof", event{phase: PhaseProcessing, err: io.EOF}, ReasonPrematureClose, ""},
		{"eof after our own protocol's bytes", event{phase: PhaseTransfer, err: io.EOF, got: []byte("HTTP/1.1 200"), self: speaksHTTP}, ReasonPrematureClose, ""},
		{"FastCGI stdout closed", event{outcome: outcomeStreamClosed, err: errFCGIStdoutClosed}, ReasonPrematureClose, ""},
		{"read timeout", event{phase: PhaseProcessing, err: os.ErrDeadlineExceeded}, ReasonReadTimeout, ""},
		{"read timeout in transfer", event{phase: PhaseTransfer, err: os.ErrDeadlineExceeded}, ReasonReadTimeout, ""},
		{"buffer full", event{outcome: outcomeBufferFull, err: errBufferFull}, ReasonHeaderTooBig, ""},
		{"framed reader past the buffer", event{phase: PhaseTransfer, err: errBufferFull}, ReasonHeaderTooBig, ""},
		{"invalid header", event{outcome: outcomeInvalidHeader, err: errInvalidHeader, got: []byte("HTTP/1.1 2x"), self: speaksHTTP, detail: "bad status"}, ReasonInvalidResponse, "bad status"},
		{"rejected", event{outcome: outcomeRejected, err: errGRPCRejected}, ReasonInvalidResponse, ""},
		{"unexpected status", event{outcome: outcomeUnexpectedStatus, err: errUnexpectedStatus, detail: "unexpected status 500"}, ReasonInvalidResponse, "unexpected status 500"},
		{"other error while reading", event{phase: PhaseProcessing, err: errors.New("x")}, ReasonInvalidResponse, ""},
		{"invalid header that is TLS", event{outcome: outcomeInvalidHeader, got: []byte("\x15\x03\x01\x00\x02"), self: speaksHTTP}, ReasonProtocolMismatch, "backend speaks TLS"},
		{"foreign bytes, unknown protocol", event{outcome: outcomeForeign, got: []byte("SSH-2.0"), self: speaksFastCGI}, ReasonProtocolMismatch, "backend does not speak FastCGI"},
		{"foreign bytes, HTTP", event{outcome: outcomeForeign, got: []byte("HTTP/1.1 400"), self: speaksFastCGI}, ReasonProtocolMismatch, "backend speaks HTTP/1.x"},
		{"reset after HTTP bytes to FastCGI", event{phase: PhaseProcessing, err: connErr(syscall.ECONNRESET), got: []byte("HTTP/1.1 400"), self: speaksFastCGI}, ReasonProtocolMismatch, "backend speaks HTTP/1.x"},
		{"plain text answer to a ClientHello", event{phase: PhaseTLS, err: tlsRecord}, ReasonProtocolMismatch, "backend speaks HTTP/1.x"},
	}
	covered := map[Reason]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := classify(tt.e)
			if got != tt.want || detail != tt.wantDetail {
				t.Errorf("classify = %q, %q; want %q, %q", got, detail, tt.want, tt.wantDetail)
			}
		})
		covered[tt.want] = true
	}
	for _, r := range Reasons {
		if !covered[r] {
			t.Errorf("reason %q has no row in this table", r)
		}
	}
}

// TestReasonsChosenOnlyByClassify keeps the design honest: outside
// classify.go (and the vocabulary in reason.go) no code of the package
// names a reason, so a reason's classifier is one hop from its constant.
func TestReasonsChosenOnlyByClassify(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "classify.go" || f == "reason.go" {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && strings.HasPrefix(id.Name, "Reason") && id.Name != "Reason" && id.Name != "ReasonNone" && id.Name != "Reasons" {
				t.Errorf("%s: %s names a reason outside classify.go", fset.Position(id.Pos()), id.Name)
			}
			return true
		})
	}
}
