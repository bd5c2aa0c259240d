package e2e

// The status page in a real browser: Debian's chromium, headless, loads
// the page the exporter binary serves for a fixture with healthy,
// failing, backup and down servers.

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
)

// chromiumBinary finds Debian's chromium (package chromium).
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	skipOrFail(t, "chromium not installed (Debian package chromium; scripts/install-test-deps.sh installs it)")
	return ""
}

// chromium runs one headless browser on url with args and returns its
// stdout and stderr. Every run has its own profile and nothing that
// reaches out of the machine (no component updates, sync or background
// requests); --no-sandbox because CI runs as root.
func chromium(t *testing.T, bin, url string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
		"--user-data-dir=" + t.TempDir(),
		// Console messages (errors, uncaught exceptions, CSP violations)
		// go to stderr as INFO:CONSOLE lines.
		"--enable-logging=stderr", "--v=0",
	}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleLine is a message the page wrote to the browser's console. The
// page has no script, so any such message (an error, an uncaught
// exception, a blocked resource) is a defect.
var consoleLine = regexp.MustCompile(`(?m)^.*(:CONSOLE[:(]|Uncaught ).*$`)

func assertNoConsoleMessages(t *testing.T, what, stderr string) {
	t.Helper()
	for _, l := range consoleLine.FindAllString(stderr, -1) {
		t.Errorf("%s: browser console: %s", what, l)
	}
}

// domRow is one server row of the page's DOM.
type domRow struct {
	server, state, text string
	links               []string
}

func parseDOM(t *testing.T, dom string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("parsing the DOM: %v", err)
	}
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func domRows(doc *html.Node) []domRow {
	var out []domRow
	for _, tr := range find(doc, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-server") != "" }) {
		r := domRow{server: attr(tr, "data-server"), state: attr(tr, "data-state"), text: textOf(tr)}
		for _, a := range find(tr, func(n *html.Node) bool { return n.Data == "a" }) {
			r.links = append(r.links, attr(a, "href"))
		}
		out = append(out, r)
	}
	return out
}

func TestStatusPageInBrowser(t *testing.T) {
	bin := chromiumBinary(t)
	healthy, backup, dead := testutil.HTTPBackend(t), testutil.HTTPBackend(t), testutil.DeadAddr(t)
	down := testutil.DeadAddr(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`events {}
http {
    upstream shop {
        server %s max_fails=3;
        server %s backup;
        server %s down;
    }
    upstream api { server %s; }
    server {
        listen 127.0.0.1:8080;
        location / { proxy_pass http://shop; }
        location /api/ { proxy_pass http://api; }
    }
}
`, dead, backup, down, healthy)), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startBinExporter(t, conf)
	base := "http://" + e.addr

	// Every probed server has a verdict before the browser looks.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var rep report.Report
		resp, err := http.Get(base + "/api/v1/targets")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&rep)
			resp.Body.Close()
		}
		if err == nil && len(rep.Targets) == 4 && rep.Summary.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not probed in time (err %v): %+v", err, rep.Summary)
		}
		time.Sleep(100 * time.Millisecond)
	}

	dom, stderr := chromium(t, bin, base+"/", "--dump-dom")
	assertNoConsoleMessages(t, "/", stderr)
	doc := parseDOM(t, dom)

	// Rows: failing first, grouped by upstream, each with its state.
	rows := domRows(doc)
	var got []string
	for _, r := range rows {
		got = append(got, r.state+" "+r.server)
	}
	want := []string{"failing " + dead, "ok " + backup, "down " + down, "ok " + healthy}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("rows %q, want %q", got, want)
	}
	failing, backupRow, downRow := rows[0], rows[1], rows[2]
	for _, w := range []string{"FAILING", "connection refused", "connect() failed (111: Connection refused) while connecting to upstream", "nothing listens there"} {
		if !strings.Contains(failing.text, w) {
			t.Errorf("failing row lacks %q: %s", w, failing.text)
		}
	}
	if !strings.Contains(backupRow.text, "backup") || !strings.Contains(backupRow.text, "OK") {
		t.Errorf("backup row: %s", backupRow.text)
	}
	if !strings.Contains(downRow.text, "down") || !strings.Contains(downRow.text, "DOWN") {
		t.Errorf("down row: %s", downRow.text)
	}
	if !containsPrefix(failing.links, "https://github.com/nginx-upstream-exporter/nginx_upstream_exporter/blob/main/docs/runbook.md#connection_refused") {
		t.Errorf("failing row has no runbook link: %q", failing.links)
	}
	for _, r := range rows {
		if !containsPrefix(r.links, "/target?upstream=") {
			t.Errorf("row %s has no link to its detail view: %q", r.server, r.links)
		}
	}
	var nav []string
	for _, a := range find(doc, func(n *html.Node) bool { return n.Data == "a" }) {
		nav = append(nav, attr(a, "href"))
	}
	for _, w := range []string{"/metrics", "/api/v1/targets", "https://github.com/nginx-upstream-exporter/nginx_upstream_exporter/blob/main/docs/"} {
		if !containsPrefix(nav, w) {
			t.Errorf("no link to %s: %q", w, nav)
		}
	}
	summary := find(doc, func(n *html.Node) bool { return attr(n, "id") == "summary" })
	if len(summary) != 1 || !strings.Contains(textOf(summary[0]), "1 PRIMARY FAILING") || !strings.Contains(textOf(summary[0]), "2 upstreams") {
		t.Errorf("summary: %v", func() string {
			if len(summary) == 0 {
				return "missing"
			}
			return textOf(summary[0])
		}())
	}

	// The detail view of the failing server, reached by the row's link.
	detail := base + failing.links[0]
	dom, stderr = chromium(t, bin, detail, "--dump-dom")
	assertNoConsoleMessages(t, failing.links[0], stderr)
	ddoc := parseDOM(t, dom)
	txt := textOf(ddoc)
	var probeNow []string
	for _, a := range find(ddoc, func(n *html.Node) bool { return n.Data == "a" && attr(n, "class") == "probe-now" }) {
		probeNow = append(probeNow, attr(a, "href"))
	}
	if len(probeNow) != 1 || !probesTarget(probeNow[0], dead, "shop") {
		t.Errorf("detail view: probe-now link %q", probeNow)
	} else if resp, err := http.Get(base + probeNow[0]); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the detail view's /probe link does not work: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	for _, w := range []string{"upstream shop, server " + dead, "Phases of the last probe", "proxy_connect_timeout", "nginx's effective settings", "Last probes", "✖ connection refused"} {
		if !strings.Contains(txt, w) {
			t.Errorf("detail view lacks %q:\n%s", w, txt)
		}
	}

	// Screenshots at desktop and phone width, kept with -artifacts.
	out := t.ArtifactDir()
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 390, 1400}} {
		file := filepath.Join(out, "statuspage-"+size.name+".png")
		_, stderr := chromium(t, bin, base+"/?refresh=off", "--screenshot="+file, fmt.Sprintf("--window-size=%d,%d", size.width, size.height), "--hide-scrollbars")
		assertNoConsoleMessages(t, size.name+" screenshot", stderr)
		f, err := os.Open(file)
		if err != nil {
			t.Fatalf("%s screenshot: %v", size.name, err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != size.width || cfg.Height != size.height {
			t.Errorf("%s screenshot %s: %dx%d (%v), want %dx%d", size.name, file, cfg.Width, cfg.Height, err, size.width, size.height)
		}
		t.Logf("%s screenshot: %s", size.name, file)
	}
}

// probesTarget: link is /probe of that server in that upstream.
func probesTarget(link, server, upstream string) bool {
	u, err := url.Parse(link)
	return err == nil && u.Path == "/probe" && u.Query().Get("target") == server && u.Query().Get("upstream") == upstream
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
