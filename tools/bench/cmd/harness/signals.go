// Signals: with -signals all the exporter runs with everything a
// deployment has on: nginx's error log (written by the farm), a running
// nginx master on the same configuration (reloaded during the soak),
// saturation data (sock_diag, always on) and the status page and API,
// fetched during the window as Prometheus and a person would.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Signal sets.
const (
	SignalsAll    = "all"
	SignalsProbes = "probes"
)

// caseFiles are the paths of one case's working directory that the
// farm, nginx and the exporter share.
type caseFiles struct {
	dir, errorLog, pidFile, runDir string
}

func newCaseFiles(dir string) caseFiles {
	return caseFiles{
		dir:      dir,
		errorLog: filepath.Join(dir, "error.log"),
		pidFile:  filepath.Join(dir, "nginx.pid"),
		runDir:   filepath.Join(dir, "nginx-run"),
	}
}

// findNginx returns nginx's binary: on PATH, else Debian's path.
func findNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("no nginx binary (PATH, /usr/sbin/nginx): -signals all needs one")
}

// nginxProc is a running nginx master started by the harness.
type nginxProc struct {
	bin, conf string
	files     caseFiles
	cmd       *exec.Cmd
	done      chan struct{}
	reloads   int
}

func (n *nginxProc) args(extra ...string) []string {
	// -e: nginx's start-up log goes to the case's error log, not the
	// compiled-in path; -p: relative paths stay in the case directory.
	return append([]string{"-p", n.files.dir, "-e", n.files.errorLog, "-c", n.conf}, extra...)
}

func startNginx(bin, conf string, files caseFiles) (*nginxProc, error) {
	if err := os.MkdirAll(files.runDir, 0o755); err != nil {
		return nil, err
	}
	n := &nginxProc{bin: bin, conf: conf, files: files, done: make(chan struct{})}
	if out, err := exec.Command(bin, n.args("-t", "-q")...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t on the generated configuration: %w: %s", err, tail(out))
	}
	out, err := os.Create(filepath.Join(files.dir, "nginx.out"))
	if err != nil {
		return nil, err
	}
	n.cmd = dieWithHarness(exec.Command(bin, n.args()...))
	n.cmd.Stdout, n.cmd.Stderr = out, out
	if err := n.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("nginx: %w", err)
	}
	go func() { n.cmd.Wait(); out.Close(); close(n.done) }()
	// Ready once the master has written its pid file.
	deadline := time.Now().Add(15 * time.Second)
	for {
		raw, err := os.ReadFile(files.pidFile)
		if err == nil && strings.TrimSpace(string(raw)) == strconv.Itoa(n.cmd.Process.Pid) {
			return n, nil
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(files.dir, "nginx.out"))
			return nil, fmt.Errorf("nginx exited at start: %s", tail(log))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, errors.New("nginx wrote no pid file within 15 s")
		}
	}
}

// reload is `nginx -s reload`: a new generation of workers.
func (n *nginxProc) reload() error {
	if out, err := exec.Command(n.bin, n.args("-s", "reload")...).CombinedOutput(); err != nil {
		return fmt.Errorf("nginx -s reload: %w: %s", err, tail(out))
	}
	n.reloads++
	return nil
}

// stop asks for a graceful shutdown (SIGQUIT), then kills.
func (n *nginxProc) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}

// alive reports whether the master still runs.
func (n *nginxProc) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Fetches of the exporter's pages during the window.

// pageStats are the timings and sizes of one page's fetches.
type pageStats struct {
	Ms    []float64
	Bytes int64 // of the last fetch, as sent (compressed when gzip)
	Errs  int
}

// pages fetches /metrics every 15 s (gzip, as Prometheus asks), / and
// /api/v1/targets every 30 s until stop is closed, starting at once.
type pages struct {
	base string
	mu   sync.Mutex
	got  map[string]*pageStats
}

// pageOrder is the order of the report rows.
var pageOrder = []string{"/metrics", "/", "/api/v1/targets"}

func (p *pages) run(stop <-chan struct{}) {
	p.got = map[string]*pageStats{}
	var wg sync.WaitGroup
	every := map[string]time.Duration{"/metrics": 15 * time.Second, "/": 30 * time.Second, "/api/v1/targets": 30 * time.Second}
	for _, path := range pageOrder {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every[path])
			defer t.Stop()
			for {
				d, n, err := fetchPage(p.base+path, path == "/metrics")
				p.mu.Lock()
				s := p.got[path]
				if s == nil {
					s = &pageStats{}
					p.got[path] = s
				}
				if err != nil {
					s.Errs++
				} else {
					s.Ms = append(s.Ms, d.Seconds()*1000)
					s.Bytes = n
				}
				p.mu.Unlock()
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

// fetchPage GETs url and reads the whole body as sent. For /metrics it
// asks as Prometheus does: gzip accepted (the compressed bytes are read,
// not decoded, so only the exporter's time counts).
func fetchPage(url string, metrics bool) (time.Duration, int64, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if metrics {
		req.Header.Set("Accept-Encoding", "gzip")
		req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1")
	}
	start := time.Now()
	resp, err := rawClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return time.Since(start), n, nil
}

// PageTiming is one page's row: median and max over the window.
type PageTiming struct {
	Path       string
	N, Errs    int
	P50, Max   float64 // ms
	Bytes      int64
	Compressed bool
}

func (p *pages) timings() []PageTiming {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PageTiming
	for _, path := range pageOrder {
		s := p.got[path]
		if s == nil {
			continue
		}
		pt := PageTiming{Path: path, N: len(s.Ms), Errs: s.Errs, P50: medianF(s.Ms), Bytes: s.Bytes, Compressed: path == "/metrics"}
		for _, v := range s.Ms {
			pt.Max = max(pt.Max, v)
		}
		out = append(out, pt)
	}
	return out
}

// SignalCheck is what /metrics showed of each signal at the window's end.
type SignalCheck struct {
	Failing      bool    // the case has failing targets, so upstream errors in the log
	LogMatched   float64 // error-log lines attributed to a target during the window
	LogLines     float64 // every error-log line read during the window
	NginxUp      float64
	Reloads      int     // nginx -s reload sent during the window
	ReloadsSeen  float64 // nginx_upstream_nginx_reloads_total increase
	CapacityRows int     // nginx_upstream_backend_listen_queue_limit samples
}

// problems lists the signals that are not live.
func (s SignalCheck) problems() []string {
	var p []string
	switch {
	case s.LogLines <= 0:
		p = append(p, "error log: no line read during the window")
	case s.Failing && s.LogMatched <= 0:
		p = append(p, fmt.Sprintf("error log: no line attributed to a target during the window (%.0f lines read)", s.LogLines))
	}
	if s.NginxUp != 1 {
		p = append(p, fmt.Sprintf("running nginx: nginx_upstream_nginx_up is %v, want 1", s.NginxUp))
	}
	if s.CapacityRows == 0 {
		p = append(p, "saturation: no nginx_upstream_backend_listen_queue_limit sample")
	}
	if s.Reloads > 0 && s.ReloadsSeen <= 0 {
		p = append(p, fmt.Sprintf("running nginx: %d reloads sent, nginx_upstream_nginx_reloads_total did not move", s.Reloads))
	}
	return p
}

func (s SignalCheck) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "error log (%.0f lines attributed, %.0f read), nginx up=%.0f", s.LogMatched, s.LogLines, s.NginxUp)
	if s.Reloads > 0 {
		fmt.Fprintf(&b, " (%d reloads, %.0f seen)", s.Reloads, s.ReloadsSeen)
	}
	fmt.Fprintf(&b, ", capacity (%d listen-queue samples), status page + API", s.CapacityRows)
	return b.String()
}
