package loadstate

import (
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
)

// TestLoadFiles: nginx reads the client certificate and key whenever they
// are set, the CA bundle and the CRL only with *_ssl_verify on
// (ngx_http_proxy_set_ssl); a missing CA bundle of a location that does
// not verify must not predict a failed reload.
func TestLoadFiles(t *testing.T) {
	srv := func(verify bool) nginxconf.UpstreamServer {
		return nginxconf.UpstreamServer{Settings: nginxconf.Settings{SSL: nginxconf.SSLSettings{
			Enabled: true, Verify: verify,
			Certificate: "/c.pem", CertificateKey: "/k.pem", TrustedCertificate: "/ca.pem", CRL: "/x.crl",
		}}}
	}
	got := loadFiles(&nginxconf.Config{Files: []string{"/nginx.conf"}, Servers: []nginxconf.UpstreamServer{srv(false)}})
	if len(got) != 3 || got["/c.pem"] != KindCertificate || got["/k.pem"] != KindCertificateKey || got["/ca.pem"] != "" {
		t.Errorf("verify off: %v", got)
	}
	got = loadFiles(&nginxconf.Config{Servers: []nginxconf.UpstreamServer{srv(true)}})
	if got["/ca.pem"] != KindTrustedCertificate || got["/x.crl"] != KindCRL {
		t.Errorf("verify on: %v", got)
	}
	vars := srv(true)
	vars.Settings.SSL.Certificate = "/certs/$ssl_server_name.pem"
	if got := loadFiles(&nginxconf.Config{Servers: []nginxconf.UpstreamServer{vars}}); got["/certs/$ssl_server_name.pem"] != "" {
		t.Errorf("a path with variables is read per request, not at load: %v", got)
	}
}
