package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

// nginxConf wraps a scenario's configuration so that nginx runs
// unprivileged or as root with every path inside the scenario's directory.
// Workers run as nobody when the suite runs as root, as on a real server,
// so socket permissions are judged against that user.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`{{if .Root}}user nobody nogroup;
{{end}}worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log info;
events {
    worker_connections 64;
}
http {
    access_log {{.Dir}}/access.log;
    client_body_temp_path {{.Dir}}/client_body_temp;
    proxy_temp_path {{.Dir}}/proxy_temp;
    fastcgi_temp_path {{.Dir}}/fastcgi_temp;
    uwsgi_temp_path {{.Dir}}/uwsgi_temp;
    scgi_temp_path {{.Dir}}/scgi_temp;
{{.HTTP}}
    server {
        listen {{.Listen}};
{{.Server}}
    }
}
`))

type nginx struct {
	dir    string
	conf   string
	listen string
	proc   *process
	net    *netEnv
}

// writeNginxConf renders the scenario's configuration into dir/nginx.conf.
func writeNginxConf(t *testing.T, dir string, data map[string]string, httpText, serverText string) string {
	t.Helper()
	return writeConf(t, dir, nginxConf, map[string]any{
		"Root":   os.Geteuid() == 0,
		"Dir":    dir,
		"Listen": data["Listen"],
		"HTTP":   renderBlock(t, "http", httpText, data),
		"Server": renderBlock(t, "server", indent(serverText, "    "), data),
	})
}

// renderBlock fills a scenario's block of configuration from data and
// indents it one level, to stand inside the block the template opens.
func renderBlock(t *testing.T, name, text string, data map[string]string) string {
	t.Helper()
	tmpl, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		t.Fatalf("scenario %s template: %v", name, err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatalf("scenario %s template: %v", name, err)
	}
	return indent(b.String(), "    ")
}

// writeConf renders conf with vars into dir/nginx.conf.
func writeConf(t *testing.T, dir string, conf *template.Template, vars map[string]any) string {
	t.Helper()
	var b bytes.Buffer
	if err := conf.Execute(&b, vars); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// nginxDir is a new directory under baseDir for one nginx and its
// backends, which nginx's worker user may enter.
func nginxDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp(baseDir, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func indent(text, prefix string) string {
	text = strings.Trim(text, "\n")
	if text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = prefix + strings.TrimLeft(l, "\t")
		}
	}
	return strings.Join(lines, "\n")
}

// mustStartNginx is startNginx for a configuration nginx must accept.
func mustStartNginx(t *testing.T, env *netEnv, dir, conf, listen string) *nginx {
	t.Helper()
	ngx, ok := startNginx(t, env, dir, conf, listen)
	if !ok {
		t.Fatalf("nginx did not start:\n%s", ngx.proc.output())
	}
	return ngx
}

// startNginx starts nginx on conf and waits until it accepts connections.
// It returns ok=false when nginx exits instead (a configuration nginx
// refuses, e.g. an upstream host that does not resolve).
func startNginx(t *testing.T, env *netEnv, dir, conf, listen string) (*nginx, bool) {
	t.Helper()
	n := &nginx{dir: dir, conf: conf, listen: listen, net: env}
	n.proc = env.start(t, filepath.Join(dir, "nginx.stderr"), nginxBinary,
		"-p", dir, "-c", conf, "-e", "stderr", "-g", "daemon off;")
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if n.proc.exited() {
			return n, false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, err := env.dial(ctx, "tcp", listen)
		cancel()
		if err == nil {
			c.Close()
			return n, true
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nginx did not start listening on %s within 15s:\n%s", listen, n.proc.output())
	return n, false
}

// get sends one HTTP/1.0 request through nginx and returns its status. A
// response without a status line is nginx passing an HTTP/0.9 response
// through, which it does with status 200.
func (n *nginx) get(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n.net.dial(ctx, "tcp", n.listen)
	if err != nil {
		t.Fatalf("connecting to nginx: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: e2e.test\r\n\r\n"); err != nil {
		t.Fatalf("sending request to nginx: %v", err)
	}
	resp, err := io.ReadAll(c)
	if err != nil && len(resp) == 0 {
		t.Fatalf("reading nginx's response: %v", err)
	}
	line, _, _ := strings.Cut(string(resp), "\r\n")
	if !strings.HasPrefix(line, "HTTP/1.") {
		return 200
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("nginx answered %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("nginx answered %q", line)
	}
	return code
}

// errorLevels are the severities nginx uses for upstream failures.
var errorLevel = regexp.MustCompile(`\[(error|crit|alert|emerg)\]`)

// errorLines returns nginx's error, crit, alert and emerg lines, from the
// error log file and from stderr (where a refused configuration goes).
func (n *nginx) errorLines() []string {
	var lines []string
	for _, name := range []string{"error.log", "nginx.stderr"} {
		f, err := os.Open(filepath.Join(n.dir, name))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if l := sc.Text(); errorLevel.MatchString(l) {
				lines = append(lines, l)
			}
		}
		f.Close()
	}
	return lines
}

// lineFor picks the error lines about one server: those that name its
// address (nginx writes `upstream: "http://ADDR/"` or the address in the
// message itself), with the address not followed by more port digits.
func linesFor(lines []string, addrs ...string) []string {
	var out []string
	for _, l := range lines {
		for _, a := range addrs {
			if regexp.MustCompile(regexp.QuoteMeta(a) + `(?:[^0-9]|$)`).MatchString(l) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// message strips nginx's "date [level] pid#tid: *conn " prefix.
func message(line string) string {
	if i := strings.Index(line, "]"); i >= 0 {
		rest := line[i+1:]
		if j := strings.Index(rest, ": "); j >= 0 {
			rest = rest[j+2:]
			if strings.HasPrefix(rest, "*") {
				if k := strings.Index(rest, " "); k >= 0 {
					rest = rest[k+1:]
				}
			}
			return rest
		}
	}
	return line
}

func (n *nginx) String() string { return fmt.Sprintf("nginx on %s (%s)", n.listen, n.dir) }
