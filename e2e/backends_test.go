package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// senv is what a backend needs to build itself for one scenario.
type senv struct {
	t   *testing.T
	net *netEnv
	dir string
	// dns holds the names the scenario's responder answers (private
	// namespaces only).
	dns map[string][]netip.Addr
	// peer is set by a backend whose server is a name: the resolved
	// address it stands for, which the exporter reports in `address`
	// and nginx names in its log.
	peer string
	// runtime is set by a backend whose name nginx resolves per request:
	// the exporter keeps `address` equal to the server as written
	// (docs/metrics.md), though nginx logs the peer.
	runtime bool
	// match lists more strings that identify the server in nginx's log
	// (a bare host name in "host not found in upstream").
	match []string
	// port is shared by backends that must listen on the same port on
	// different addresses (one name, several addresses).
	port int
}

// backend builds one upstream server for a scenario (a healthy one or a
// fault) and returns its address as written in nginx.conf: "ip:port",
// "host:port" or "unix:/path".
type backend func(s *senv) string

// ---- TCP backends ---------------------------------------------------------

// tcpServer accepts connections on 127.0.0.1 and hands each to handle.
func tcpServer(handle func(c net.Conn)) backend {
	return func(s *senv) string {
		return serve(s, "tcp", "127.0.0.1:0", handle)
	}
}

// serve listens in the scenario's namespace and runs handle for every
// connection until the test ends.
func serve(s *senv, network, addr string, handle func(c net.Conn)) string {
	l, err := s.net.listen(network, addr)
	if err != nil {
		s.t.Fatalf("backend listen %s %s: %v", network, addr, err)
	}
	return serveOn(s, l, handle)
}

func serveOn(s *senv, l net.Listener, handle func(c net.Conn)) string {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	s.t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	if l.Addr().Network() == "unix" {
		return "unix:" + l.Addr().String()
	}
	return l.Addr().String()
}

// readHead reads a request head (up to the blank line) or, for binary
// protocols, whatever the peer sent within a short while.
func readHead(c net.Conn) []byte {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var buf bytes.Buffer
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		buf.Write(b[:n])
		if bytes.Contains(buf.Bytes(), []byte("\r\n\r\n")) || err != nil {
			return buf.Bytes()
		}
		if buf.Len() > 0 && !bytes.HasPrefix(buf.Bytes(), []byte("GET ")) && !bytes.HasPrefix(buf.Bytes(), []byte("HEAD ")) {
			// Not HTTP (FastCGI, TLS): one read is the request.
			return buf.Bytes()
		}
	}
}

// waitClosed blocks until the peer closes c or the test ends.
func waitClosed(c net.Conn) { io.Copy(io.Discard, c) }

// respond answers every request on a connection with text.
func respond(text string) func(c net.Conn) {
	return func(c net.Conn) {
		readHead(c)
		io.WriteString(c, text)
	}
}

// healthyHTTP is a backend answering 200.
func healthyHTTP() backend {
	return func(s *senv) string {
		l, err := s.net.listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.t.Fatal(err)
		}
		return serveHTTP(s, l)
	}
}

// serveHTTP runs a real HTTP server answering 200 on l.
func serveHTTP(s *senv, l net.Listener) string {
	return testutil.ServeHTTP(s.t, l, testutil.OKHandler())
}

// refused holds a bound TCP port with no listener: connects get a RST
// (ECONNREFUSED), and nobody else can take the port meanwhile.
func refused() backend { return refusedAt("127.0.0.1", false) }

// refusedAt is refused on ip; with shared it uses the scenario's shared
// port (see senv.port).
func refusedAt(ip string, shared bool) backend {
	return func(s *senv) string {
		var fd int
		port := 0
		if shared {
			port = s.port
		}
		err := s.net.do(func() error {
			var err error
			fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: netip.MustParseAddr(ip).As4(), Port: port}); err != nil {
				return err
			}
			sa, err := syscall.Getsockname(fd)
			if err != nil {
				return err
			}
			port = sa.(*syscall.SockaddrInet4).Port
			return nil
		})
		if err != nil {
			s.t.Fatalf("reserving a port: %v", err)
		}
		s.t.Cleanup(func() { syscall.Close(fd) })
		if shared {
			s.port = port
		}
		return fmt.Sprintf("%s:%d", ip, port)
	}
}

// healthyHTTPAt is healthyHTTP on ip and the scenario's shared port.
func healthyHTTPAt(ip string) backend {
	return func(s *senv) string {
		l, err := s.net.listen("tcp", fmt.Sprintf("%s:%d", ip, s.port))
		if err != nil {
			s.t.Fatal(err)
		}
		s.port = l.Addr().(*net.TCPAddr).Port
		return serveHTTP(s, l)
	}
}

// closesAfterRequest reads the request and closes without answering.
func closesAfterRequest() backend {
	return tcpServer(func(c net.Conn) { readHead(c) })
}

// resets reads the request and resets the connection (SO_LINGER 0).
func resets() backend {
	return tcpServer(func(c net.Conn) {
		readHead(c)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	})
}

// hangs reads the request and never answers.
func hangs() backend {
	return tcpServer(func(c net.Conn) { waitClosed(c) })
}

// bigHeader answers with a 16 KiB header, more than nginx's default
// proxy_buffer_size (one page).
func bigHeader() backend {
	return tcpServer(respond("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\nContent-Length: 0\r\n\r\n"))
}

// strictHTTP answers like nginx or Apache as a backend: 200 to an HTTP
// request, and "400 Bad Request" as soon as the first bytes are not HTTP
// (Go's own server would wait for a newline until its header timeout).
func strictHTTP() backend {
	return tcpServer(func(c net.Conn) {
		head := readHead(c)
		if bytes.HasPrefix(head, []byte("GET ")) || bytes.HasPrefix(head, []byte("HEAD ")) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
}

// ---- unix socket backends -------------------------------------------------

// listenUnix listens on a socket in dir that nginx's workers may write to.
func listenUnix(s *senv, path string) *net.UnixListener {
	var l net.Listener
	l, err := s.net.listen("unix", path)
	if err != nil {
		s.t.Fatalf("listen unix %s: %v", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		s.t.Fatal(err)
	}
	return l.(*net.UnixListener)
}

// healthyUnixHTTP is an HTTP server on a unix socket.
func healthyUnixHTTP() backend {
	return func(s *senv) string {
		return serveHTTP(s, listenUnix(s, filepath.Join(s.dir, "app.sock")))
	}
}

// missingSocket names a socket file that does not exist.
func missingSocket() backend {
	return func(s *senv) string { return "unix:" + filepath.Join(s.dir, "missing.sock") }
}

// staleSocket leaves a socket file behind with no process listening, as
// after a crash.
func staleSocket() backend {
	return func(s *senv) string {
		path := filepath.Join(s.dir, "stale.sock")
		l := listenUnix(s, path)
		l.SetUnlinkOnClose(false)
		l.Close()
		return "unix:" + path
	}
}

// privateSocket is a live HTTP server whose socket lies in a root-only
// directory: root (the exporter) can connect, nginx's worker cannot.
func privateSocket() backend {
	return func(s *senv) string {
		dir := filepath.Join(s.dir, "private")
		if err := os.Mkdir(dir, 0o700); err != nil {
			s.t.Fatal(err)
		}
		return serveHTTP(s, listenUnix(s, filepath.Join(dir, "app.sock")))
	}
}

// readOnlySocket is a live HTTP server on a socket the worker may reach
// but not write to (mode 0755, owned by root): connect(2) needs write
// permission on the socket file.
func readOnlySocket() backend {
	return func(s *senv) string {
		path := filepath.Join(s.dir, "ro.sock")
		l := listenUnix(s, path)
		if err := os.Chmod(path, 0o755); err != nil {
			s.t.Fatal(err)
		}
		return serveHTTP(s, l)
	}
}

// fullBacklog listens with backlog 0 and parks one connection in the
// accept queue, which is then full: Linux fails the next non-blocking
// connect(2) to a unix socket with EAGAIN.
func fullBacklog() backend {
	return func(s *senv) string {
		path := filepath.Join(s.dir, "full.sock")
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			s.t.Fatal(err)
		}
		s.t.Cleanup(func() { syscall.Close(fd); os.Remove(path) })
		if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
			s.t.Fatal(err)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			s.t.Fatal(err)
		}
		if err := syscall.Listen(fd, 0); err != nil {
			s.t.Fatal(err)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			s.t.Fatalf("queueing the first connection: %v", err)
		}
		s.t.Cleanup(func() { c.Close() })
		if c2, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c2.Close()
			s.t.Fatalf("the accept queue of %s is not full after one connection", path)
		}
		return "unix:" + path
	}
}

// ---- FastCGI --------------------------------------------------------------

// fastcgiGarbage answers anything with a FastCGI record of an unknown type.
func fastcgiGarbage() backend {
	return func(s *senv) string {
		l := listenUnix(s, filepath.Join(s.dir, "fcgi.sock"))
		return serveOn(s, l, func(c net.Conn) {
			readHead(c)
			// version 1, type 99, request id 1, content length 0.
			c.Write([]byte{1, 99, 0, 1, 0, 0, 0, 0})
		})
	}
}

// phpFPM runs Debian's php-fpm with a pool on a unix socket.
func phpFPM() backend {
	return func(s *senv) string {
		sock := filepath.Join(s.dir, "php-fpm.sock")
		www := filepath.Join(s.dir, "www")
		if err := os.Mkdir(www, 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(www, "index.php"), []byte("<?php echo \"ok\\n\";\n"), 0o644); err != nil {
			s.t.Fatal(err)
		}
		user := ""
		if os.Geteuid() == 0 {
			user = "user = nobody\ngroup = nogroup\n"
		}
		conf := fmt.Sprintf(`[global]
pid = %[1]s/php-fpm.pid
error_log = %[1]s/php-fpm.log
daemonize = no

[www]
%[2]slisten = %[3]s
listen.mode = 0666
pm = static
pm.max_children = 2
ping.path = /ping
`, s.dir, user, sock)
		confPath := filepath.Join(s.dir, "php-fpm.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			s.t.Fatal(err)
		}
		args := []string{"-F", "-n", "-y", confPath}
		if os.Geteuid() == 0 {
			args = append(args, "-R")
		}
		p := s.net.start(s.t, filepath.Join(s.dir, "php-fpm.out"), phpFPMBinary, args...)
		deadline := time.Now().Add(15 * time.Second)
		for {
			if c, err := net.Dial("unix", sock); err == nil {
				c.Close()
				break
			}
			if p.exited() || time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(s.dir, "php-fpm.log"))
				s.t.Fatalf("php-fpm did not start listening on %s:\n%s\n%s", sock, p.output(), log)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return "unix:" + sock
	}
}

// ---- TLS ------------------------------------------------------------------

// certSet holds the certificates of the suite, generated once.
type certSet struct {
	trustedCAFile string          // the CA nginx trusts (proxy_ssl_trusted_certificate)
	good          tls.Certificate // backend.test, by the trusted CA
	wrongName     tls.Certificate // other.test, by the trusted CA
	untrusted     tls.Certificate // backend.test, by a CA nginx does not know
}

var (
	certsOnce sync.Once
	certs     *certSet
	certsErr  error
)

func testCerts(t *testing.T) *certSet {
	t.Helper()
	certsOnce.Do(func() { certs, certsErr = makeCerts(filepath.Join(baseDir, "pki")) })
	if certsErr != nil {
		t.Fatalf("generating certificates: %v", certsErr)
	}
	return certs
}

func makeCerts(dir string) (*certSet, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	trusted, err := testutil.NewCert("e2e trusted CA", testutil.CertOptions{CA: true})
	if err != nil {
		return nil, err
	}
	other, err := testutil.NewCert("e2e unknown CA", testutil.CertOptions{CA: true})
	if err != nil {
		return nil, err
	}
	cs := &certSet{trustedCAFile: filepath.Join(dir, "trusted-ca.pem")}
	if err := os.WriteFile(cs.trustedCAFile, trusted.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		into *tls.Certificate
		name string
		ca   *testutil.Cert
	}{{&cs.good, "backend.test", trusted}, {&cs.wrongName, "other.test", trusted}, {&cs.untrusted, "backend.test", other}} {
		leaf, err := testutil.NewCert(c.name, testutil.CertOptions{Parent: c.ca, Names: []string{c.name}})
		if err != nil {
			return nil, err
		}
		*c.into = leaf.TLS()
	}
	return cs, nil
}

// tlsHTTP is an HTTPS server answering 200 with the chosen certificate;
// tweak adjusts its TLS configuration (versions, ...).
func tlsHTTP(pick func(*certSet) tls.Certificate, tweak func(*tls.Config)) backend {
	return func(s *senv) string {
		cfg := &tls.Config{Certificates: []tls.Certificate{pick(testCerts(s.t))}}
		if tweak != nil {
			tweak(cfg)
		}
		l, err := s.net.listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.t.Fatal(err)
		}
		return serveHTTP(s, tls.NewListener(l, cfg))
	}
}

// ---- namespaces: names and packet filters ---------------------------------

// named gives inner's address a DNS name served by the scenario's
// responder, and returns "name:port". Several servers named alike make a
// name with several addresses: nginx and the exporter then see one peer
// per address.
func named(name string, inner backend) backend {
	return func(s *senv) string {
		addr := inner(s)
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			s.t.Fatal(err)
		}
		s.dns[name] = append(s.dns[name], netip.MustParseAddr(host))
		s.peer = addr
		return net.JoinHostPort(name, port)
	}
}

// resolvedAtRuntime is named() for a name nginx resolves per request
// through `resolver` (a *_pass address with variables).
func resolvedAtRuntime(name string, inner backend) backend {
	return func(s *senv) string {
		server := named(name, inner)(s)
		s.runtime = true
		return server
	}
}

// unresolvable is a name the scenario's responder answers NXDOMAIN for.
// Under .invalid (RFC 6761) it cannot exist anywhere, and the private
// namespace has no route off the machine anyway.
func unresolvable() backend {
	return func(s *senv) string {
		const server = "backend.e2e.invalid:8080"
		// nginx names the host alone in "host not found in upstream".
		s.match = []string{"backend.e2e.invalid"}
		return server
	}
}

// filtered runs a healthy HTTP server on 127.0.0.2 and adds an iptables
// rule for its port in the scenario's private namespace; "{{port}}" in
// rule is replaced by the port.
func filtered(rule ...string) backend {
	return func(s *senv) string {
		l, err := s.net.listen("tcp", "127.0.0.2:0")
		if err != nil {
			s.t.Fatal(err)
		}
		addr := serveHTTP(s, l)
		_, port, _ := net.SplitHostPort(addr)
		args := make([]string, len(rule))
		for i, a := range rule {
			args[i] = strings.ReplaceAll(a, "{{port}}", port)
		}
		s.net.iptables(s.t, args...)
		return addr
	}
}

// ---- uwsgi ----------------------------------------------------------------

// uwsgiAnswer reads one uwsgi packet (a 4-byte header and its variables)
// and answers 200, as a uWSGI application server does. Bytes it cannot
// frame (a ClientHello to a plain listener, shorter than the size its
// header seems to announce) are answered in plain text after a short wait:
// what nginx then reports as a wrong version number.
func uwsgiAnswer(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	io.ReadFull(c, make([]byte, binary.LittleEndian.Uint16(hdr[1:3])))
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
}

// uwsgiServer is a uwsgi backend, over TLS with the chosen certificate
// (uwsgi_pass suwsgi://) or in plain text when pick is nil.
func uwsgiServer(pick func(*certSet) tls.Certificate) backend {
	return func(s *senv) string {
		l, err := s.net.listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.t.Fatal(err)
		}
		if pick != nil {
			l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{pick(testCerts(s.t))}})
		}
		return serveOn(s, l, uwsgiAnswer)
	}
}
