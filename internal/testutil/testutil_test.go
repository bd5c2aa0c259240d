package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCertChainVerifies(t *testing.T) {
	ca := MustCert(t, "Test CA", CertOptions{CA: true})
	inter := MustCert(t, "Test Intermediate", CertOptions{CA: true, Parent: ca})
	leaf := MustCert(t, "backend.test", CertOptions{Parent: inter, Names: []string{"backend.test", "127.0.0.1"}})
	expired := MustCert(t, "backend.test", CertOptions{Parent: ca, NotAfter: time.Now().Add(-time.Hour), Names: []string{"backend.test"}})

	inters := x509.NewCertPool()
	inters.AddCert(inter.Cert)
	for _, name := range []string{"backend.test", "127.0.0.1"} {
		if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool(), Intermediates: inters}); err != nil {
			t.Errorf("leaf for %s: %v", name, err)
		}
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: ca.Pool(), Intermediates: inters}); err == nil {
		t.Error("leaf verified for a name it does not carry")
	}
	if _, err := expired.Cert.Verify(x509.VerifyOptions{DNSName: "backend.test", Roots: ca.Pool()}); err == nil {
		t.Error("expired certificate verified")
	}
	if leaf.Cert.SerialNumber.Cmp(expired.Cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial")
	}
	if ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 || leaf.Cert.KeyUsage&x509.KeyUsageCertSign != 0 {
		t.Errorf("cert-sign usage: CA %v, leaf %v", ca.Cert.KeyUsage, leaf.Cert.KeyUsage)
	}
}

func TestCertPEMLoads(t *testing.T) {
	c := MustCert(t, "pem.test", CertOptions{Names: []string{"pem.test"}})
	certPath, keyPath := c.MustWritePEM(t, t.TempDir(), "server")
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(pair.Certificate[0]) != string(c.DER) {
		t.Error("loaded certificate differs from the generated one")
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", st.Mode().Perm())
	}
}

func TestTLSServesChain(t *testing.T) {
	ca := MustCert(t, "CA", CertOptions{CA: true})
	inter := MustCert(t, "Intermediate", CertOptions{CA: true, Parent: ca})
	leaf := MustCert(t, "chain.test", CertOptions{Parent: inter, Names: []string{"chain.test"}})
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS(inter)}})
	if err != nil {
		t.Fatal(err)
	}
	addr := ServeHTTP(t, l, OKHandler())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "chain.test"}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("the intermediate was not sent or not trusted: %v", err)
	}
	resp.Body.Close()
}

func TestPickPortIsFree(t *testing.T) {
	p := FreePort(t)
	if p <= 0 || p > 65535 {
		t.Fatalf("port %d", p)
	}
	l, err := net.Listen("tcp", FreeAddr(t))
	if err != nil {
		t.Fatalf("free address not bindable: %v", err)
	}
	l.Close()
	failing := func(string, string) (net.Listener, error) { return nil, os.ErrPermission }
	if _, err := PickPort(failing); err == nil {
		t.Error("PickPort hid the listen error")
	}
}

func TestHTTPBackendAnswers(t *testing.T) {
	addr := HTTPBackend(t)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "ok" {
		t.Errorf("got %d %q", resp.StatusCode, b)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/main.go"); err != nil {
		t.Errorf("module root %s has no main.go: %v", root, err)
	}
}

func TestDeadAddrRefuses(t *testing.T) {
	if c, err := net.DialTimeout("tcp", DeadAddr(t), time.Second); err == nil {
		c.Close()
		t.Error("connected to the dead address")
	}
}

func TestFastCGIBackendAnswersOnUnixSocket(t *testing.T) {
	path := ShortDir(t) + "/fpm.sock"
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if got := FastCGIBackend(t, l); got != "unix:"+path {
		t.Errorf("address %q, want unix:%s", got, path)
	}
	// FCGI_GET_VALUES (type 9) asking for FCGI_MPXS_CONNS: a FastCGI
	// server answers FCGI_GET_VALUES_RESULT (type 10).
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	body := []byte{15, 0, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_', 'C', 'O', 'N', 'N', 'S'}
	rec := append([]byte{1, 9, 0, 0, 0, byte(len(body)), 0, 0}, body...)
	if _, err := c.Write(rec); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("no FastCGI answer: %v", err)
	}
	if hdr[0] != 1 || hdr[1] != 10 {
		t.Errorf("answer header %v, want version 1 type 10", hdr)
	}
}

func TestWriteNginxConf(t *testing.T) {
	path := WriteNginxConf(t, "upstream u { server 127.0.0.1:1; }")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "user ") || !strings.Contains(string(b), "http {\nupstream u { server 127.0.0.1:1; }\n}") {
		t.Errorf("nginx.conf:\n%s", b)
	}
}

func TestRunAsNobody(t *testing.T) {
	cred := Nobody(t)
	_, bin := PublicCopy(t, "/usr/bin/id", "id")
	for _, tc := range []struct {
		groups []uint32
		want   string
	}{
		{nil, fmt.Sprintf("%d %d %d\n", cred.Uid, cred.Gid, cred.Gid)},
		{[]uint32{4242}, fmt.Sprintf("%d %d %d 4242\n", cred.Uid, cred.Gid, cred.Gid)},
	} {
		cmd := exec.Command("/bin/sh", "-c", `echo "$("$0" -u) $("$0" -g) $("$0" -G)"`, bin)
		RunAs(cmd, cred, tc.groups...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if string(out) != tc.want {
			t.Errorf("groups %v: ran as %q, want %q", tc.groups, out, tc.want)
		}
	}
}

func TestCountingListenerCounts(t *testing.T) {
	addr, n := CountingListener(t)
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for n.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("counted %d connections, want 3", got)
	}
}
