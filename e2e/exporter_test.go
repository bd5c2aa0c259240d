package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// series is one sample of the exposition format.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the text exposition format, which is all the exporter
// serves without content negotiation.
func parseMetrics(r io.Reader) ([]series, error) {
	var out []series
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := series{labels: map[string]string{}}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			return nil, fmt.Errorf("bad sample line %q", line)
		}
		s.name, line = line[:i], line[i:]
		if strings.HasPrefix(line, "{") {
			rest, err := parseLabels(line[1:], s.labels)
			if err != nil {
				return nil, fmt.Errorf("%w in %q", err, sc.Text())
			}
			line = rest
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil, fmt.Errorf("no value in %q", sc.Text())
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("bad value in %q: %w", sc.Text(), err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseLabels reads `name="value",...}` and returns what follows the brace.
func parseLabels(s string, into map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.Index(s, "=\"")
		if eq < 0 {
			return "", fmt.Errorf("bad labels")
		}
		name := s[:eq]
		s = s[eq+2:]
		var b strings.Builder
		for {
			if s == "" {
				return "", fmt.Errorf("unterminated label value")
			}
			c := s[0]
			s = s[1:]
			if c == '"' {
				break
			}
			if c == '\\' && s != "" {
				switch s[0] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[0])
				}
				s = s[1:]
				continue
			}
			b.WriteByte(c)
		}
		into[name] = b.String()
	}
}

// verdict is what the exporter says about one server.
type verdict struct {
	found   bool
	runs    float64
	success float64
	// hasSuccess: nginx_upstream_probe_success is exported (it is not
	// for a probe without a verdict).
	hasSuccess bool
	reasons    []string // reason labels of nginx_upstream_probe_failure_reason == 1
	// inconclusive is the cause of nginx_upstream_probe_inconclusive == 1.
	inconclusive string
}

func (v verdict) reason() string {
	if len(v.reasons) == 0 {
		return ""
	}
	return strings.Join(v.reasons, ",")
}

func (v verdict) String() string {
	if !v.found {
		return "no series for this server"
	}
	r := v.reason()
	if r == "" {
		r = "none"
	}
	if v.inconclusive != "" {
		return fmt.Sprintf("no verdict (cause=%s) runs=%g", v.inconclusive, v.runs)
	}
	return fmt.Sprintf("reason=%s success=%g runs=%g", r, v.success, v.runs)
}

// verdicts groups the exporter's per-target series by their `server` and
// `address` labels ("server address", see target.key).
func verdicts(all []series) map[string]verdict {
	out := map[string]verdict{}
	for _, s := range all {
		server, ok := s.labels["server"]
		if !ok {
			continue
		}
		key := server + " " + s.labels["address"]
		v := out[key]
		switch s.name {
		case "nginx_upstream_probe_runs_total":
			v.found = true
			v.runs += s.value
		case "nginx_upstream_probe_success":
			v.found = true
			v.success = s.value
			v.hasSuccess = true
		case "nginx_upstream_probe_failure_reason":
			if s.value == 1 {
				v.reasons = append(v.reasons, s.labels["reason"])
			}
		case "nginx_upstream_probe_inconclusive":
			if s.value == 1 {
				v.inconclusive = s.labels["cause"]
			}
		}
		out[key] = v
	}
	return out
}

type exporter struct {
	proc   *process
	listen string
	net    *netEnv
}

// startExporter runs the exporter binary on nginx's configuration file,
// with extra flags.
func startExporter(t *testing.T, env *netEnv, dir, conf string, extra ...string) *exporter {
	t.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", env.freePort(t))
	args := append([]string{
		"--nginx.config=" + conf,
		"--web.listen-address=" + listen,
		"--probe.interval=1s",
		"--log.level=debug",
	}, extra...)
	p := env.start(t, filepath.Join(dir, "exporter.log"), exporterBinary, args...)
	return &exporter{proc: p, listen: listen, net: env}
}

func (x *exporter) scrape(ctx context.Context) ([]series, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return x.net.dial(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+x.listen+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// waitForRuns scrapes until every server has been probed at least once
// and returns the verdicts of that scrape.
func (x *exporter) waitForRuns(t *testing.T, targets []target) map[string]verdict {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var (
		last    map[string]verdict
		lastErr error
	)
	for time.Now().Before(deadline) {
		if x.proc.exited() {
			t.Fatalf("the exporter exited (%v):\n%s", x.proc.err, x.proc.output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		all, err := x.scrape(ctx)
		cancel()
		if err == nil {
			last, lastErr = verdicts(all), nil
			done := true
			for _, tg := range targets {
				// A server the exporter probed under another address
				// counts as done: the comparison reports the address.
				v, exists := last[tg.key()]
				if v.runs < 1 && (exists || !probedElsewhere(last, tg)) {
					done = false
				}
			}
			if done {
				return last
			}
		} else {
			lastErr = err
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the exporter did not probe every server (%v) within 45s; last scrape error: %v; last verdicts: %v\nexporter log:\n%s",
		targets, lastErr, last, x.proc.output())
	return nil
}

// addressesOf lists the `address` labels the exporter reports for server.
func addressesOf(vs map[string]verdict, server string) []string {
	var out []string
	for k := range vs {
		if srv, addr, ok := strings.Cut(k, " "); ok && srv == server {
			out = append(out, addr)
		}
	}
	slices.Sort(out)
	return out
}

func probedElsewhere(vs map[string]verdict, tg target) bool {
	for _, addr := range addressesOf(vs, tg.server) {
		if addr != tg.address && vs[tg.server+" "+addr].runs >= 1 {
			return true
		}
	}
	return false
}
