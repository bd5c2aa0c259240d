package prober

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The exporter's own limits never become a verdict about the backend.
func TestInconclusive(t *testing.T) {
	tests := []struct {
		name string
		e    event
		want Inconclusive
	}{
		{"too many open files", event{phase: PhaseConnect, err: &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}}, InconclusiveExporterResources},
		{"file table full", event{phase: PhaseConnect, err: os.NewSyscallError("socket", syscall.ENFILE)}, InconclusiveExporterResources},
		{"no local port", event{phase: PhaseConnect, err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}, InconclusiveExporterResources},
		{"no buffer space", event{phase: PhaseProcessing, err: os.NewSyscallError("write", syscall.ENOBUFS)}, InconclusiveExporterResources},
		{"our deadline", event{phase: PhaseProcessing, err: os.ErrDeadlineExceeded, deadline: true}, InconclusiveProbeTimeout},
		{"our deadline while connecting", event{phase: PhaseConnect, err: os.ErrDeadlineExceeded, deadline: true}, InconclusiveProbeTimeout},
		{"nginx's timer", event{phase: PhaseProcessing, err: os.ErrDeadlineExceeded}, ""},
		{"refused after our deadline is still refused", event{phase: PhaseConnect, err: os.NewSyscallError("connect", syscall.ECONNREFUSED), deadline: true}, ""},
		{"an outcome is the backend's", event{outcome: outcomeInvalidHeader, err: os.ErrDeadlineExceeded, deadline: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inconclusive(tt.e); got != tt.want {
				t.Errorf("inconclusive = %q, want %q", got, tt.want)
			}
			var r Result
			r.fail(tt.e)
			if tt.want != "" && (r.Reason != ReasonNone || r.Inconclusive != tt.want || r.Success) {
				t.Errorf("result %+v", r)
			}
			if tt.want == "" && (r.Reason == ReasonNone || r.Inconclusive != "") {
				t.Errorf("a verdict was expected: %+v", r)
			}
		})
	}
}

// A backend slower than the exporter's cap but within nginx's read
// timeout: nginx would serve its answer, so the probe must not say
// read_timeout. Without a cap the probe waits as nginx does and succeeds.
func TestCapIsNotReadTimeout(t *testing.T) {
	slow := func(c net.Conn) {
		if _, err := readHTTPRequest(c); err != nil {
			return
		}
		time.Sleep(600 * time.Millisecond)
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		waitClosed(c)
	}
	b := serveTCP(t, slow)
	tg := b.target("http")
	tg.ReadTimeout = 5 * time.Second // nginx's proxy_read_timeout

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var r Result
	New().Probe(ctx, tg, &r)
	if r.Success || r.Reason != ReasonNone || r.Inconclusive != InconclusiveProbeTimeout {
		t.Fatalf("capped probe: success %v reason %q inconclusive %q (err %v)", r.Success, r.Reason, r.Inconclusive, r.Err)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), tg.MaxDuration())
	defer cancel2()
	r = Result{}
	New().Probe(ctx2, tg, &r)
	checkResult(t, &r, ReasonNone)
	if r.Phases[PhaseProcessing] < 500*time.Millisecond {
		t.Errorf("processing phase %v, want the backend's 600ms", r.Phases[PhaseProcessing])
	}

	// nginx's own read timeout shorter than the backend: read_timeout.
	tg.ReadTimeout = 200 * time.Millisecond
	checkResult(t, runProbe(t, tg), ReasonReadTimeout)
}

// TestExhaustedFileDescriptors reproduces the exporter's own fd table
// running out (as with a low `prlimit --nofile`) in a child process: a
// probe of a healthy backend then fails before reaching it, and must say
// so instead of blaming the backend with connection_refused.
func TestExhaustedFileDescriptors(t *testing.T) {
	if os.Getenv("PROBER_EMFILE_CHILD") == "1" {
		emfileChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExhaustedFileDescriptors$", "-test.v")
	cmd.Env = append(os.Environ(), "PROBER_EMFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "inconclusive=exporter_resources reason=\"\"") {
		t.Fatalf("child did not report an inconclusive probe:\n%s", out)
	}
}

func emfileChild(t *testing.T) {
	b := serveTCP(t, respond("HTTP/1.1 200 OK\r\n\r\n"))
	tg := b.target("http")
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		files = append(files, f)
	}
	var r Result
	New().Probe(context.Background(), tg, &r)
	fmt.Printf("inconclusive=%s reason=%q err=%v\n", r.Inconclusive, r.Reason, r.Err)
}
