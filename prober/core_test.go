package prober

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil/dnstest"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

func connectTarget(network, address string) *Peer {
	return &Peer{Protocol: protocol.TCP, Network: network, Address: address, ConnectTimeout: time.Second}
}

// requireRoot skips a test that needs root unless running in CI, where it
// must run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root in CI")
		}
		t.Skip("needs root to judge permissions for another user")
	}
}

var nobody = &Credentials{User: "nobody", UID: 65534, GID: 65534}

func TestConnectProbe(t *testing.T) {
	healthy := serveTCP(t, waitClosed)
	_, sock := serveUnix(t, waitClosed)

	refused := testutil.FreeAddr(t) // closed again: nothing listens there

	dir := testutil.ShortDir(t)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	tests := []struct {
		name   string
		target *Peer
		want   Reason
	}{
		{"tcp healthy", connectTarget("tcp", healthy.ln.Addr().String()), ReasonNone},
		{"unix healthy", connectTarget("unix", sock), ReasonNone},
		{"tcp refused", connectTarget("tcp", refused), ReasonConnectionRefused},
		{"unix missing", connectTarget("unix", filepath.Join(dir, "missing.sock")), ReasonSocketNotFound},
		{"unix missing directory", connectTarget("unix", filepath.Join(dir, "nodir", "x.sock")), ReasonSocketNotFound},
		{"unix stale socket file", connectTarget("unix", stale), ReasonConnectionRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runProbe(t, tt.target)
			checkResult(t, r, tt.want)
		})
	}
}

func TestConnectPermissions(t *testing.T) {
	requireRoot(t)
	// A socket in a directory the worker cannot search.
	dir := testutil.ShortDir(t)
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	ln1, err := net.Listen("unix", filepath.Join(private, "a.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln1.Close()
	os.Chmod(filepath.Join(private, "a.sock"), 0o777)

	// A socket the worker may reach but not write.
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(dir, 0o755)
	ro := filepath.Join(open, "ro.sock")
	ln2, err := net.Listen("unix", ro)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	os.Chmod(ro, 0o644)

	// A socket the worker may use.
	okPath := filepath.Join(open, "ok.sock")
	ln3, err := net.Listen("unix", okPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ln3.Close()
	os.Chmod(okPath, 0o666)

	tests := []struct {
		name string
		path string
		want Reason
	}{
		{"directory not searchable", filepath.Join(private, "a.sock"), ReasonPermissionDenied},
		{"socket not writable", ro, ReasonPermissionDenied},
		{"allowed", okPath, ReasonNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := connectTarget("unix", tt.path)
			tg.Worker = nobody
			r := runProbe(t, tg)
			checkResult(t, r, tt.want)
			// The exporter itself (root) could connect: the verdict is
			// the worker's.
			tg.Worker = nil
			checkResult(t, runProbe(t, tg), ReasonNone)
		})
	}
}

func TestConnectBacklogFull(t *testing.T) {
	path := filepath.Join(testutil.ShortDir(t), "full.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	// One pending connection fills a backlog of 0.
	pending, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Close()
	r := runProbe(t, connectTarget("unix", path))
	checkResult(t, r, ReasonBacklogFull)
}

func TestRuntimeResolve(t *testing.T) {
	b := serveTCP(t, waitClosed)
	_, port, _ := net.SplitHostPort(b.ln.Addr().String())

	resolveTarget := func(server string) *Peer {
		return &Peer{Protocol: protocol.TCP, Network: "tcp", ConnectTimeout: time.Second,
			Resolve: &RuntimeResolve{Host: "backend.nue.test", Port: port, Resolvers: []string{server}}}
	}
	t.Run("nxdomain", func(t *testing.T) {
		r := runProbe(t, resolveTarget(dnstest.Start(t, nil).Addr()))
		checkResult(t, r, ReasonDNSError)
	})
	t.Run("answer", func(t *testing.T) {
		r := runProbe(t, resolveTarget(dnstest.Start(t, map[string][]netip.Addr{"backend.nue.test": {netip.MustParseAddr("127.0.0.1")}}).Addr()))
		checkResult(t, r, ReasonNone)
		if r.Address != net.JoinHostPort("127.0.0.1", port) {
			t.Errorf("address = %q", r.Address)
		}
	})
	t.Run("no resolver", func(t *testing.T) {
		tg := resolveTarget("")
		tg.Resolve.Resolvers = nil
		checkResult(t, runProbe(t, tg), ReasonDNSError)
	})
}

func TestUnknownProtocolConnects(t *testing.T) {
	b := serveTCP(t, waitClosed)
	tg := b.target("tcp")
	tg.Protocol = protocol.Unknown
	checkResult(t, runProbe(t, tg), ReasonNone)
}

// Every protocol of the table that nginx speaks through a *_pass has an
// exchange: a new table entry without its prober file fails here.
func TestEveryProtocolHasAnExchange(t *testing.T) {
	for _, label := range protocol.Labels() {
		pt, _ := protocol.ParseLabel(label)
		if pt.Protocol.Spec().Directive == "" {
			continue
		}
		if exchanges[pt.Protocol] == nil {
			t.Errorf("no exchange for protocol %s", pt.Protocol)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err   error
		phase Phase
		want  Reason
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, PhaseConnect, ReasonConnectionRefused},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EAGAIN)}, PhaseConnect, ReasonBacklogFull},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, PhaseProcessing, ReasonConnectionReset},
		{os.ErrDeadlineExceeded, PhaseConnect, ReasonConnectTimeout},
		{os.ErrDeadlineExceeded, PhaseTLS, ReasonTLSHandshakeTimeout},
		{os.ErrDeadlineExceeded, PhaseTransfer, ReasonReadTimeout},
		{&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, PhaseResolve, ReasonDNSError},
	}
	for i, tt := range tests {
		if got := Classify(tt.err, tt.phase); got != tt.want {
			t.Errorf("%d: Classify(%v, %v) = %q, want %q", i, tt.err, tt.phase, got, tt.want)
		}
	}
}
