package loadstate

import (
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
)

// maxHashBytes bounds the bytes hashed per file: configuration files and
// certificates are small; anything larger is compared by size and
// modification time only.
const maxHashBytes = 4 << 20

// fileState is what is known of one file at one moment.
type fileState struct {
	exists  bool
	err     error // other than "does not exist": unreadable
	size    int64
	modTime time.Time
	hash    [sha256.Size]byte
}

// statFile reads a file's metadata and, when hash is true, its content
// hash. The hash is what tells an edit from a touch (or a certificate
// renewed to the same bytes from one replaced).
func statFile(path string, hash bool) fileState {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}
	}
	if err != nil {
		return fileState{exists: true, err: err}
	}
	s := fileState{exists: true, size: st.Size(), modTime: st.ModTime()}
	if !hash || !st.Mode().IsRegular() {
		return s
	}
	f, err := os.Open(path)
	if err != nil {
		s.err = err
		return s
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, maxHashBytes)); err != nil {
		s.err = err
		return s
	}
	copy(s.hash[:], h.Sum(nil))
	return s
}

// sameMeta reports whether the metadata is unchanged, so that the content
// need not be hashed again.
func (s fileState) sameMeta(o fileState) bool {
	return s.exists == o.exists && s.size == o.size && s.modTime.Equal(o.modTime) && (s.err == nil) == (o.err == nil)
}

// FileKind says why nginx reads a file when it loads.
type FileKind string

// File kinds.
const (
	KindConfig             FileKind = "config"
	KindCertificate        FileKind = "certificate"
	KindCertificateKey     FileKind = "certificate_key"
	KindTrustedCertificate FileKind = "trusted_certificate"
	KindCRL                FileKind = "crl"
)

// loadFiles lists the files nginx reads when it loads cfg: the tree, and
// the client certificates, keys, CA bundles and CRLs of its upstreams
// (read by ngx_ssl_certificate, ngx_ssl_trusted_certificate and
// ngx_ssl_crl at load time: a missing one makes the load fail). Paths with variables are read per
// request, not at load, and "data:" values are not files.
func loadFiles(cfg *nginxconf.Config) map[string]FileKind {
	out := make(map[string]FileKind, len(cfg.Files))
	for _, f := range cfg.Files {
		out[f] = KindConfig
	}
	add := func(p string, k FileKind) {
		if p == "" || strings.Contains(p, "$") || strings.HasPrefix(p, "data:") {
			return
		}
		if _, ok := out[p]; !ok {
			out[p] = k
		}
	}
	for i := range cfg.Servers {
		ssl := &cfg.Servers[i].Settings.SSL
		if !ssl.Enabled {
			continue
		}
		add(ssl.Certificate, KindCertificate)
		add(ssl.CertificateKey, KindCertificateKey)
		if ssl.Verify {
			// ngx_http_proxy_set_ssl loads the CA bundle and the CRL
			// only for *_ssl_verify on.
			add(ssl.TrustedCertificate, KindTrustedCertificate)
			add(ssl.CRL, KindCRL)
		}
	}
	return out
}
