package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a generated certificate and its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	DER  []byte
}

// CertOptions describe a certificate to generate.
type CertOptions struct {
	// Parent signs the certificate; nil makes it self-signed.
	Parent *Cert
	// CA marks a certificate authority.
	CA bool
	// NotAfter defaults to a day from now; a time in the past makes an
	// expired certificate.
	NotAfter time.Time
	// Names are DNS names or IP addresses for the subject alternative
	// name extension.
	Names []string
}

// NewCert generates an ECDSA P-256 certificate (the cheapest common
// handshake for both sides) with common name cn, usable for server and
// client authentication.
func NewCert(cn string, o CertOptions) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	// A random serial: certificates of one issuer must not share one, and
	// a counter would be state shared by every test of the binary.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("generating serial: %w", err)
	}
	notAfter := o.NotAfter
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		// Two hours back: an expired certificate (NotAfter an hour ago)
		// must still have NotBefore < NotAfter.
		NotBefore:             time.Now().Add(-2 * time.Hour),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  o.CA,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if o.CA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signKey := tmpl, key
	if o.Parent != nil {
		signer, signKey = o.Parent.Cert, o.Parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		return nil, fmt.Errorf("creating certificate %q: %w", cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate %q: %w", cn, err)
	}
	return &Cert{Cert: c, Key: key, DER: der}, nil
}

// MustCert is NewCert failing the test on error.
func MustCert(tb testing.TB, cn string, o CertOptions) *Cert {
	tb.Helper()
	c, err := NewCert(cn, o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TLS returns the certificate for a tls.Config, followed by chain (the
// intermediates, and optionally the root, a server sends).
func (c *Cert) TLS(chain ...*Cert) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.Key, Leaf: c.Cert}
	for _, p := range chain {
		tc.Certificate = append(tc.Certificate, p.DER)
	}
	return tc
}

// CertPEM is the certificate in PEM.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// KeyPEM is the private key in PEM (SEC 1, "EC PRIVATE KEY").
func (c *Cert) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(c.Key)
	if err != nil {
		return nil, fmt.Errorf("marshalling key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// Pool is a certificate pool holding only c, to trust it.
func (c *Cert) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// WritePEM writes dir/name.crt and dir/name.key (mode 0600) and returns
// their paths.
func (c *Cert) WritePEM(dir, name string) (certPath, keyPath string, err error) {
	certPath = filepath.Join(dir, name+".crt")
	keyPath = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, c.CertPEM(), 0o600); err != nil {
		return "", "", fmt.Errorf("writing certificate: %w", err)
	}
	key, err := c.KeyPEM()
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		return "", "", fmt.Errorf("writing key: %w", err)
	}
	return certPath, keyPath, nil
}

// MustWritePEM is WritePEM failing the test on error.
func (c *Cert) MustWritePEM(tb testing.TB, dir, name string) (certPath, keyPath string) {
	tb.Helper()
	certPath, keyPath, err := c.WritePEM(dir, name)
	if err != nil {
		tb.Fatal(err)
	}
	return certPath, keyPath
}
