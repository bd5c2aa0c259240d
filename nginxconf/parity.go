package nginxconf

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// This file holds the load-time checks nginx makes on what concerns
// upstreams, so that Load refuses what `nginx -t` refuses, with nginx's
// message and position, and accepts what it accepts. parity_test.go runs
// every case through the real nginx -t.

// passInUse returns the *_pass directive nginx uses among the nodes of
// one location (or `if`, or limit_except) level: the last one, because
// each *_pass sets the location's content handler and the last one set
// wins. The same directive twice is refused, as each module refuses a
// second *_pass of its own ("is duplicate").
func passInUse(nodes []*node) (*node, error) {
	var last *node
	seen := map[string]bool{}
	for _, n := range nodes {
		if n.isBlk {
			continue
		}
		if _, ok := protocol.ByDirective(n.name); !ok {
			continue
		}
		if seen[n.name] {
			return nil, n.errorf("%q directive is duplicate", n.name)
		}
		seen[n.name] = true
		last = n
	}
	return last, nil
}

// balancingMethods are the upstream{} directives whose peer selection has
// no backup servers: a `server ... backup` after one of them is refused
// (ngx_http_upstream_server checks the flags the method set). Written
// after the servers, nginx accepts them.
var balancingMethods = map[string]bool{"ip_hash": true, "hash": true, "random": true}

// checkBackup refuses `backup` after a balancing method without backup
// support, as ngx_http_upstream_server does.
func checkBackup(block []*node) error {
	noBackup := false
	for _, c := range block {
		if c.isBlk {
			continue
		}
		if balancingMethods[c.name] {
			noBackup = true
			continue
		}
		if c.name != "server" || !noBackup {
			continue
		}
		if slices.Contains(c.args[min(1, len(c.args)):], "backup") {
			return c.errorf(`balancing method does not support parameter "backup"`)
		}
	}
	return nil
}

// levelScope is levelScope with the checks nginx makes while it parses a
// level: *_ssl_password_file is read by the directive itself
// (ngx_ssl_read_password_file), wherever it is written.
func (w *walker) levelScope(nodes []*node, parent *scope) (*scope, error) {
	sc, err := levelScope(nodes, parent)
	if err != nil || w.fs == nil {
		return sc, err
	}
	for _, n := range nodes {
		if n.isBlk || !strings.HasSuffix(n.name, "_ssl_password_file") || len(n.args) != 1 || runtimeFile(n.args[0]) {
			continue
		}
		name := w.confPath(n.args[0])
		if _, err := w.fs.ReadFile(name); errors.Is(err, fs.ErrNotExist) {
			return nil, n.errorf("open() %q failed (2: No such file or directory)", name)
		}
	}
	return sc, nil
}

// implicitUpstream is an upstream nginx creates for a *_pass with a
// static address that names no upstream{} block (ngx_http_upstream_add).
// nginx shares it with every later *_pass of the same host whose port is
// the same or absent: `grpc_pass grpcs://127.0.0.1;` after
// `proxy_pass https://127.0.0.1;` uses 127.0.0.1:443, whatever the
// protocol.
type implicitUpstream struct {
	addr address
	// port is 0 when neither written nor defaulted by the scheme: nginx
	// then refuses the configuration when it initialises upstreams
	// ("no port in upstream"), at the *_pass that created it.
	port int
	at   *node
}

// implicitFor returns the implicit upstream a static TCP address uses,
// creating it as ngx_http_upstream_add does.
func (w *walker) implicitFor(a address, n *node) *implicitUpstream {
	port, _ := strconv.Atoi(a.port) // 0 when empty; validated before
	host := strings.ToLower(a.host)
	for _, u := range w.implicitByHost[host] {
		if u.port != 0 && port != 0 && u.port != port {
			continue
		}
		return u
	}
	u := &implicitUpstream{addr: a, port: port, at: n}
	w.implicit = append(w.implicit, u)
	if w.implicitByHost == nil {
		w.implicitByHost = map[string][]*implicitUpstream{}
	}
	w.implicitByHost[host] = append(w.implicitByHost[host], u)
	return u
}

// checkPorts is ngx_http_upstream_init_main_conf's check: an implicit
// upstream without a port is refused at the *_pass that created it, once
// the whole http{} block is parsed and its locations merged.
func (w *walker) checkPorts() error {
	for _, u := range w.implicit {
		if u.port == 0 {
			return u.at.errorf("no port in upstream %q", u.addr.raw)
		}
	}
	return nil
}

// sslCheck is a location whose *_pass speaks TLS: nginx loads its
// certificates and trusted certificates when merging the location
// (ngx_http_proxy_set_ssl and its grpc and uwsgi twins), after the whole
// http{} block is parsed.
type sslCheck struct {
	prefix string // "proxy", "grpc", "uwsgi"
	sc     *scope
	order  int
}

// sslModuleOrder is the order nginx's modules merge their locations in
// (ngx_modules.c), which decides which error nginx reports first.
var sslModuleOrder = map[string]int{"proxy": 0, "uwsgi": 1, "grpc": 2}

// checkSSLFiles makes nginx's checks of *_ssl_certificate,
// *_ssl_certificate_key and *_ssl_trusted_certificate for every location
// that speaks TLS. nginx's master reads them as root: a file the exporter
// cannot read for lack of permission is not held against the
// configuration (unknown, not refused); a missing one, or one without the
// PEM blocks OpenSSL looks for, is.
func (w *walker) checkSSLFiles() error {
	checks := slices.Clone(w.sslChecks)
	slices.SortStableFunc(checks, func(a, b sslCheck) int {
		return cmp.Compare(sslModuleOrder[a.prefix], sslModuleOrder[b.prefix])
	})
	for _, c := range checks {
		if err := w.checkSSL(c); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) checkSSL(c sslCheck) error {
	p := c.prefix
	val := func(name string) (string, *node) {
		if n := c.sc.lookup(p + name); n != nil {
			return n.args[0], n
		}
		return "", nil
	}
	cert, certNode := val("_ssl_certificate")
	key, _ := val("_ssl_certificate_key")
	if cert != "" && !runtimeFile(cert) {
		// ngx_http_proxy_set_ssl names no position: nginx logs these
		// without one. The directive's position is the useful one.
		if key == "" {
			return certNode.errorf(`no "%s_ssl_certificate_key" is defined for certificate %q`, p, cert)
		}
		if ok, err := w.hasPEM(w.confPath(cert), isCertificate); err == nil && !ok {
			return certNode.errorf("cannot load certificate %q", w.confPath(cert))
		}
		if !runtimeFile(key) && !strings.HasPrefix(key, "engine:") {
			if ok, err := w.hasPEM(w.confPath(key), isPrivateKey); err == nil && !ok {
				return certNode.errorf("cannot load certificate key %q", w.confPath(key))
			}
		}
	}
	if v, _ := val("_ssl_verify"); v != "on" {
		return nil
	}
	trusted, trustedNode := val("_ssl_trusted_certificate")
	if trusted == "" {
		verify := c.sc.lookup(p + "_ssl_verify")
		return verify.errorf("no %s_ssl_trusted_certificate for %s_ssl_verify", p, p)
	}
	if ok, err := w.hasPEM(w.confPath(trusted), isTrusted); err == nil && !ok {
		return trustedNode.errorf("SSL_CTX_load_verify_locations(%q) failed", w.confPath(trusted))
	}
	// ngx_ssl_crl loads certificates and CRLs alike.
	if crl, crlNode := val("_ssl_crl"); crl != "" && !runtimeFile(crl) {
		if ok, err := w.hasPEM(w.confPath(crl), isTrusted); err == nil && !ok {
			return crlNode.errorf("X509_LOOKUP_load_file(%q) failed", w.confPath(crl))
		}
	}
	return nil
}

// runtimeFile reports a certificate value nginx loads per request
// (variables, nginx 1.21+) or from memory ("data:").
func runtimeFile(v string) bool {
	return strings.Contains(v, "$") || strings.HasPrefix(v, "data:")
}

func isCertificate(t string) bool { return t == "CERTIFICATE" || t == "TRUSTED CERTIFICATE" }
func isTrusted(t string) bool     { return isCertificate(t) || t == "X509 CRL" }
func isPrivateKey(t string) bool  { return strings.HasSuffix(t, "PRIVATE KEY") }

// hasPEM reports whether the file holds a PEM block of a wanted type. A
// missing file, or one that is not a regular file, holds none. err is
// set when the file could not be judged (no permission): unknown. Only
// the block's BEGIN line is looked at: what OpenSSL would make of its
// content is not judged, so that Load never refuses what nginx accepts.
func (w *walker) hasPEM(name string, want func(string) bool) (bool, error) {
	if w.fs == nil {
		return true, nil
	}
	data, err := w.fs.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrNotRegular):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", name, err)
	}
	const begin = "-----BEGIN "
	for {
		i := bytes.Index(data, []byte(begin))
		if i < 0 {
			return false, nil
		}
		data = data[i+len(begin):]
		end := bytes.Index(data, []byte("-----"))
		if end < 0 {
			return false, nil
		}
		if want(string(data[:end])) {
			return true, nil
		}
	}
}
