package statuspage

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// Values an attacker who can write nginx's configuration, a backend's
// answer or the error log could choose.
const (
	evilUpstream = `"><script>alert(1)</script>`
	evilServer   = `unix:/tmp/<img src=x onerror=alert(2)>.sock`
	evilAddress  = `javascript:alert(3)`
	evilSource   = `/etc/nginx/</pre><script>alert(4)</script>.conf:3`
	evilDetail   = `<iframe src=//evil.example></iframe>`
	evilError    = `x" onmouseover="alert(5)`
	evilLogLine  = `2026/11/27 [error] upstream "</code><script>alert(6)</script>"`
	evilConfig   = `/etc/<b onclick=alert(7)>nginx.conf`
)

func hostile() statuses {
	mk := func(k discovery.Key, r prober.Result) scheduler.Status {
		return scheduler.Status{
			Target:    &discovery.Target{Key: k, Probe: &prober.Peer{Network: "unix"}, Network: "unix", Sources: []string{evilSource}},
			HasResult: true, Result: r, Finished: now, Runs: 1,
		}
	}
	return statuses{
		mk(discovery.Key{Upstream: evilUpstream, Server: evilServer, Address: evilAddress, Protocol: "fastcgi"},
			prober.Result{Reason: prober.ReasonProtocolMismatch, Detail: evilDetail, Err: errors.New(evilError)}),
		mk(discovery.Key{Upstream: evilUpstream, Server: "127.0.0.1:1", Address: "127.0.0.1:1", Protocol: "http"},
			prober.Result{Success: true, HTTPStatus: 200}),
	}
}

// assertInert fails on anything in the document that could run or load:
// script, iframe, img, object, embed elements, event-handler attributes
// and javascript: URLs.
func assertInert(t *testing.T, where, page string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "iframe", "img", "object", "embed", "b":
				t.Errorf("%s: a <%s> element came through", where, n.Data)
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: attribute %s=%q on <%s>", where, a.Key, a.Val, n.Data)
				}
				if (a.Key == "href" || a.Key == "src" || a.Key == "action") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
					t.Errorf("%s: %s=%q", where, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
}

// text is the document's visible text.
func text(t *testing.T, page string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return b.String()
}

func TestHostileValuesAreEscaped(t *testing.T) {
	facts := func(dst []report.Fact, _ discovery.Key) []report.Fact {
		return append(dst, report.Fact{Source: "error_log", Name: "recent errors", Value: evilDetail, State: report.FactFailing, Lines: []string{evilLogLine}})
	}
	h := newHandlers(hostile(), nil, func(o *Options) {
		o.NginxConfig = evilConfig
		o.TargetFacts = []TargetFacts{facts}
		o.Nginx = func() *report.Nginx {
			return &report.Nginx{Running: true, Messages: []string{evilLogLine}}
		}
		out := map[discovery.Key]*report.Logged{}
		for _, st := range hostile() {
			out[st.Target.Key] = &report.Logged{Errors: map[string]int{evilDetail: 1}, LastLine: evilLogLine}
		}
		o.Logged = loggedFrom(out)
	})
	detail := "/target?" + url.Values{"upstream": {evilUpstream}, "server": {evilServer}}.Encode()
	for _, u := range []string{"/", "/?upstream=" + url.QueryEscape(evilUpstream), "/?q=" + url.QueryEscape(`"><script>`) + "&refresh=off", detail} {
		code, page, _ := get(t, h, u)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", u, code)
		}
		assertInert(t, u, page)
		// Escaped, not dropped: the operator sees the values as they are.
		txt := text(t, page)
		for _, want := range []string{evilUpstream, evilServer, evilDetail, evilLogLine, evilConfig} {
			if !strings.Contains(txt, want) {
				t.Errorf("%s: the text does not show %q", u, want)
			}
		}
	}
	_, page, _ := get(t, h, detail)
	for _, want := range []string{evilSource, evilError, evilAddress} {
		if !strings.Contains(text(t, page), want) {
			t.Errorf("target view does not show %q", want)
		}
	}

	_, body, _ := get(t, h, "/api/v1/targets")
	var rep report.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("API answer is not JSON: %v\n%s", err, body)
	}
	if len(rep.Targets) != 2 || rep.Targets[0].Upstream != evilUpstream || rep.Targets[0].Server != evilServer ||
		rep.Targets[0].Detail != evilDetail || rep.Targets[0].Facts[0].Lines[0] != evilLogLine || rep.Config != evilConfig {
		t.Errorf("API does not carry the values verbatim: %+v", rep)
	}
	if strings.Contains(body, "<script>") {
		t.Error("API body carries a raw <script> (a browser sniffing it as HTML would run it)")
	}
}
