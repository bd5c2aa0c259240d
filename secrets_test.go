package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// Values in the nginx configuration that must never leave it: header
// values nginx sends upstream, TLS key material and passwords.
var secrets = []string{
	"s3cr3t-token",             // proxy_set_header Authorization
	"k3y-0f-d00m",              // proxy_set_header X-Api-Key
	"h0st-hdr.example",         // proxy_set_header Host
	"gRPC-m3tadata-s3cret",     // grpc_set_header
	"K3YM4T3R14L-D0-N0T-L34K",  // content of proxy_ssl_certificate_key
	"CL13NTC3RT-C0NT3NT",       // content of proxy_ssl_certificate
	"p4ssphr4se-f1le-c0ntent",  // content of proxy_ssl_password_file
	"fastcgi-p4ram-s3cret-val", // fastcgi_param value
}

func secretConf(t *testing.T) (conf, backend, tlsBackend string) {
	t.Helper()
	dir := t.TempDir()
	key := testutil.WriteFile(t, dir, "client.key", "-----BEGIN PRIVATE KEY-----\nK3YM4T3R14L-D0-N0T-L34K\n-----END PRIVATE KEY-----\n")
	cert := testutil.WriteFile(t, dir, "client.pem", "-----BEGIN CERTIFICATE-----\nCL13NTC3RT-C0NT3NT\n-----END CERTIFICATE-----\n")
	pw := testutil.WriteFile(t, dir, "pass.txt", "p4ssphr4se-f1le-c0ntent\n")
	backend, tlsBackend = testutil.HTTPBackend(t), testutil.HTTPBackend(t)
	conf = testutil.WriteNginxConf(t, fmt.Sprintf(`
    upstream api { server %s max_fails=2; }
    upstream secure { server %s; }
    server {
        listen 127.0.0.1:8080;
        server_name example.test;
        location / {
            proxy_set_header Authorization "Bearer s3cr3t-token";
            proxy_set_header X-Api-Key k3y-0f-d00m;
            proxy_set_header Host h0st-hdr.example;
            proxy_http_version 1.1;
            proxy_pass http://api;
        }
        location /tls/ {
            proxy_set_header Authorization "Bearer s3cr3t-token";
            proxy_ssl_certificate %s;
            proxy_ssl_certificate_key %s;
            proxy_ssl_password_file %s;
            proxy_ssl_server_name on;
            proxy_pass https://secure;
        }
        location /grpc/ {
            grpc_set_header X-Token gRPC-m3tadata-s3cret;
            grpc_pass grpc://%s;
        }
        location ~ \.php$ {
            fastcgi_param HTTP_X_SECRET fastcgi-p4ram-s3cret-val;
            fastcgi_pass %s;
        }
    }`, backend, tlsBackend, cert, key, pw, backend, backend))
	return conf, backend, tlsBackend
}

// probedAll: each of the 4 targets has a verdict or, for the FastCGI
// probe an HTTP backend never answers within the 2 s cap, none.
func probedAll(metrics string) bool {
	return strings.Count(metrics, "nginx_upstream_probe_success{")+strings.Count(metrics, "nginx_upstream_probe_inconclusive{") >= 4
}

func assertNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret %q", where, s)
		}
	}
}

// TestSecretsNeverLeave checks every output of the exporter: /metrics,
// /probe, the status page, /api/v1/targets, /target, debug logs, and the
// diagnose table, JSON and list.
func TestSecretsNeverLeave(t *testing.T) {
	conf, backend, tlsBackend := secretConf(t)

	t.Run("server", func(t *testing.T) {
		logs := &syncBuffer{}
		addr, _ := startServer(t, conf, "", probeFlags{}, logs)
		c := &http.Client{Timeout: 10 * time.Second}
		// Wait until the scheduler has probed every target.
		var metrics string
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			_, metrics = do(t, c, http.MethodGet, "http://"+addr+"/metrics", "", "")
			if probedAll(metrics) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !probedAll(metrics) {
			t.Fatalf("targets were not probed in time:\n%s", metrics)
		}
		assertNoSecret(t, "/metrics", metrics)
		for _, target := range []string{backend, tlsBackend} {
			code, body := do(t, c, http.MethodGet, "http://"+addr+"/probe?target="+target, "", "")
			if code != http.StatusOK {
				t.Errorf("/probe?target=%s: %d %s", target, code, body)
			}
			assertNoSecret(t, "/probe", body)
		}
		_, body := do(t, c, http.MethodGet, "http://"+addr+"/", "", "")
		assertNoSecret(t, "status page", body)
		if !strings.Contains(body, backend) {
			t.Errorf("the status page does not list the backend %s", backend)
		}
		_, body = do(t, c, http.MethodGet, "http://"+addr+"/api/v1/targets", "", "")
		assertNoSecret(t, "/api/v1/targets", body)
		if !strings.Contains(body, `"tls":{"verify":false,"verify_name":"secure","sni":"secure","client_certificate":true}`) {
			t.Errorf("/api/v1/targets does not describe the TLS target (without its secrets):\n%s", body)
		}
		for _, target := range []string{backend, tlsBackend} {
			code, body := do(t, c, http.MethodGet, "http://"+addr+"/target?server="+target, "", "")
			if code != http.StatusOK {
				t.Errorf("/target?server=%s: %d", target, code)
			}
			assertNoSecret(t, "/target?server="+target, body)
		}
		_, body = do(t, c, http.MethodPost, "http://"+addr+"/-/reload", "", "")
		assertNoSecret(t, "/-/reload", body)
		if !strings.Contains(logs.String(), "level=DEBUG") {
			t.Error("debug logging was not captured")
		}
		assertNoSecret(t, "debug logs", logs.String())
	})

	t.Run("diagnose", func(t *testing.T) {
		for _, args := range [][]string{
			{"diagnose", "--nginx.config", conf, "--log.level=debug"},
			{"diagnose", "--nginx.config", conf, "--log.level=debug", "--output=json"},
			{"diagnose", "--nginx.config", conf, "--log.level=debug", "--list"},
			{"diagnose", "--nginx.config", conf, "--log.level=debug", "--list", "--output=json"},
		} {
			code, stdout, stderr := runMain(t, args...)
			if code != 0 && code != 1 {
				t.Errorf("%v: exit %d\n%s", args, code, stderr)
			}
			if !strings.Contains(stdout, backend) {
				t.Errorf("%v: output does not list the backend:\n%s", args, stdout)
			}
			assertNoSecret(t, strings.Join(args[3:], " ")+" stdout", stdout)
			assertNoSecret(t, strings.Join(args[3:], " ")+" stderr", stderr)
		}
	})
}

// TestPasswordInURLNeverEchoed: nginx refuses user:password@ in an
// upstream address; so does the exporter, without repeating the password.
func TestPasswordInURLNeverEchoed(t *testing.T) {
	const password = "hunter2-url-pw"
	for _, block := range []string{
		`server { location / { proxy_pass http://admin:` + password + `@127.0.0.1:8080/; } }`,
		`upstream b { server admin:` + password + `@127.0.0.1:8080; } server { location / { proxy_pass http://b; } }`,
	} {
		conf := testutil.WriteNginxConf(t, block)
		for _, args := range [][]string{
			{"diagnose", "--nginx.config", conf, "--log.level=debug"},
			{"diagnose", "--nginx.config", conf, "--log.level=debug", "--output=json"},
			{"diagnose", "--nginx.config", conf, "--log.level=debug", "--list"},
		} {
			code, stdout, stderr := runMain(t, args...)
			if code != 2 {
				t.Errorf("%v: exit %d, want 2 (nginx refuses this configuration)", args, code)
			}
			if strings.Contains(stdout+stderr, password) {
				t.Errorf("%v: password echoed:\n%s\n%s", args, stdout, stderr)
			}
			if !strings.Contains(stderr, "credentials") {
				t.Errorf("%v: error does not say what is wrong:\n%s", args, stderr)
			}
		}
		// serve fails to start, and says why without the password.
		logs := &syncBuffer{}
		code := run([]string{"--nginx.config", conf, "--log.level=debug", "--web.listen-address=127.0.0.1:0"}, logs, logs)
		if code != 1 {
			t.Errorf("serve exit %d, want 1", code)
		}
		if strings.Contains(logs.String(), password) {
			t.Errorf("serve logged the password:\n%s", logs.String())
		}
	}
}
