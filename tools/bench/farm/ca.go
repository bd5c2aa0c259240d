package farm

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// ServerName is the name in the farm's server certificate.
const ServerName = "farm.test"

// CA is a throwaway certificate authority and one server certificate it
// signed, valid for ServerName and 127.0.0.1.
type CA struct {
	CertPEM []byte
	leaf    tls.Certificate
}

// NewCA generates a CA and a server certificate with the exporter tests'
// generator (ECDSA P-256, the cheapest common handshake for both sides).
// The leaf lasts a week: a soak run must not see it expire.
func NewCA() (*CA, error) {
	ca, err := testutil.NewCert("bench farm CA", testutil.CertOptions{CA: true, NotAfter: time.Now().Add(30 * 24 * time.Hour)})
	if err != nil {
		return nil, fmt.Errorf("farm CA: %w", err)
	}
	leaf, err := testutil.NewCert(ServerName, testutil.CertOptions{
		Parent: ca, NotAfter: time.Now().Add(7 * 24 * time.Hour), Names: []string{ServerName, "127.0.0.1"},
	})
	if err != nil {
		return nil, fmt.Errorf("farm server certificate: %w", err)
	}
	return &CA{CertPEM: ca.CertPEM(), leaf: leaf.TLS(ca)}, nil
}

// ServerConfig is the TLS configuration of the farm's https listeners.
func (ca *CA) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.leaf}, MinVersion: tls.VersionTLS12}
}
