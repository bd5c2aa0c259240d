// Processes: building the exporter and the floor, starting them, and
// reading their CPU, memory and probe counters.

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/floor"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/procstat"
)

type binaries struct{ exporter, floor, self string }

func build(o options) binaries {
	b := binaries{exporter: o.exporter, floor: filepath.Join(o.workdir, "floor")}
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	b.self = self
	// Both binaries are built as releases are (the Makefile and the
	// Dockerfile): static, without cgo. A cgo build maps libc and its
	// resolver, about 2 MB more RSS that no released binary has.
	if err := os.Setenv("CGO_ENABLED", "0"); err != nil {
		fatalf("%v", err)
	}
	if b.exporter == "" && o.which != "floor" {
		b.exporter = filepath.Join(o.workdir, "nginx_upstream_exporter")
		flags := []string{"-trimpath"}
		if o.pprofDir != "" {
			flags = append(flags, pprofOverlay(o.workdir)...)
		}
		// The exporter module is this checkout (go.mod replaces it with
		// ../..).
		if err := testutil.BuildExporter(b.exporter, flags...); err != nil {
			fatalf("%v", err)
		}
	}
	buildFloor(b.floor)
	return b
}

// buildFloor builds cmd/floor of this module.
func buildFloor(out string) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	dir := filepath.Dir(strings.TrimSpace(string(gomod)))
	if err != nil || filepath.Base(dir) != "bench" {
		fatalf("run the harness inside tools/bench of the repository (go env GOMOD: %q, %v)", gomod, err)
	}
	if err := testutil.GoBuild(dir, out, "./cmd/floor"); err != nil {
		fatalf("%v", err)
	}
}

// pprofFile is added to the exporter's main package for profiling builds.
const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"strconv"
)

func init() {
	// BENCH_MEMPROFILERATE samples the heap more finely than every
	// 512 KiB, for diffs of a few MB between two heap profiles.
	if r, err := strconv.Atoi(os.Getenv("BENCH_MEMPROFILERATE")); err == nil && r > 0 {
		runtime.MemProfileRate = r
	}
	if addr := os.Getenv("BENCH_PPROF_ADDR"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// pprofOverlay returns the go build flags that add pprofFile to the
// exporter's main package without changing the tree.
func pprofOverlay(workdir string) []string {
	root, err := testutil.ModuleRoot()
	if err != nil {
		fatalf("%v", err)
	}
	src := filepath.Join(workdir, "bench_pprof.go")
	overlay := filepath.Join(workdir, "overlay.json")
	if err := os.WriteFile(src, []byte(pprofFile), 0o644); err != nil {
		fatalf("%v", err)
	}
	raw, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "zz_bench_pprof.go"): src}})
	if err := os.WriteFile(overlay, raw, 0o644); err != nil {
		fatalf("%v", err)
	}
	return []string{"-overlay", overlay}
}

// raiseNofile lifts RLIMIT_NOFILE for the harness and the processes it
// starts: 10,000 targets need tens of thousands of descriptors in the farm.
func raiseNofile() {
	var l syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	want := uint64(200000)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}) != nil {
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: l.Max, Max: l.Max})
	}
}

type proc struct {
	name       string
	cmd        *exec.Cmd
	metricsURL string // exporter
	pprofAddr  string // exporter built with -pprof
	// peakProfile, with pprofAddr, is where the heap profile at the
	// window's RSS peak goes (and its text form, with ".txt").
	peakProfile string
	lines       *bufio.Scanner // floor's stats
	side        Side

	t0     time.Time
	s0     procstat.Sample
	m0, m1 procstat.Metrics
	fs0    floor.Stats
	stderr *os.File
}

func startExporter(bin, conf string, interval time.Duration, conc int, extra, dir string, pprof bool) (*proc, error) {
	port := freePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{
		"--nginx.config=" + conf,
		"--web.listen-address=" + addr,
		"--probe.interval=" + interval.String(),
		fmt.Sprintf("--probe.concurrency=%d", conc),
	}
	extraArgs := strings.Fields(extra)
	// -exporter-args may set its own log level: kingpin refuses repeats.
	if !slices.ContainsFunc(extraArgs, func(a string) bool { return strings.HasPrefix(a, "--log.level=") }) {
		args = append(args, "--log.level=warn")
	}
	args = append(args, extraArgs...)
	cmd := dieWithHarness(exec.Command(bin, args...))
	var pprofAddr string
	if pprof {
		pprofAddr = fmt.Sprintf("127.0.0.1:%d", freePort())
		cmd.Env = append(os.Environ(), "BENCH_PPROF_ADDR="+pprofAddr)
	}
	logf2, _ := os.Create(filepath.Join(dir, "exporter.log"))
	cmd.Stdout, cmd.Stderr = logf2, logf2
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: "exporter", cmd: cmd, metricsURL: "http://" + addr + "/metrics", stderr: logf2, pprofAddr: pprofAddr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, err := scrape(p.metricsURL); err == nil {
			return p, nil
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			p.stop()
			out, _ := os.ReadFile(filepath.Join(dir, "exporter.log"))
			return nil, fmt.Errorf("exporter did not serve /metrics: %s", tail(out))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startFloor(bin, targets string, interval time.Duration, conc int, timeout time.Duration) (*proc, error) {
	cmd := dieWithHarness(exec.Command(bin, "-targets", targets, "-interval", interval.String(),
		fmt.Sprintf("-concurrency=%d", conc), "-timeout", timeout.String()))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proc{name: "floor", cmd: cmd, lines: bufio.NewScanner(out)}, nil
}

func (p *proc) floorStats() (floor.Stats, error) {
	var s floor.Stats
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return s, err
	}
	if !p.lines.Scan() {
		return s, fmt.Errorf("floor exited: %v", p.lines.Err())
	}
	return s, json.Unmarshal(p.lines.Bytes(), &s)
}

// begin snapshots counters then CPU: the scrape's own cost falls before the window.
func (p *proc) begin() error {
	var err error
	if p.metricsURL != "" {
		if p.m0, _, err = scrape(p.metricsURL); err != nil {
			return err
		}
		p.side.Goroutines0 = p.m0.Goroutines
	} else if p.fs0, err = p.floorStats(); err != nil {
		return err
	}
	p.t0 = time.Now()
	p.s0, err = procstat.Read(p.cmd.Process.Pid)
	p.side.RSS0 = p.s0.RSS
	// The window's first reading is one of its readings: RSS max
	// counts it, as it counts the last.
	p.side.RSSMax = max(p.side.RSSMax, p.s0.RSS)
	return err
}

// end snapshots CPU then counters: the scrape's cost falls after the window.
func (p *proc) end() error {
	s1, err := procstat.Read(p.cmd.Process.Pid)
	if err != nil {
		return err
	}
	p.side.Ran = true
	p.side.Window = time.Since(p.t0)
	p.side.CPU = s1.CPU - p.s0.CPU
	p.side.RSSEnd = s1.RSS
	p.side.RSSMax = max(p.side.RSSMax, s1.RSS)
	if p.metricsURL != "" {
		m1, _, err := scrape(p.metricsURL)
		if err != nil {
			return err
		}
		p.m1 = m1
		p.side.Probes = m1.Runs - p.m0.Runs
		p.side.Failures = m1.Failures - p.m0.Failures
		p.side.LagP50 = procstat.Quantile(0.5, p.m0.LagBuckets, m1.LagBuckets)
		p.side.LagP99 = procstat.Quantile(0.99, p.m0.LagBuckets, m1.LagBuckets)
		p.side.Series = m1.Series
		p.side.Goroutines1 = m1.Goroutines
		return nil
	}
	fs1, err := p.floorStats()
	if err != nil {
		return err
	}
	p.side.Probes = float64(fs1.Probes - p.fs0.Probes)
	p.side.Failures = float64(fs1.Failures - p.fs0.Failures)
	before, after := map[float64]float64{}, map[float64]float64{}
	var cb, ca float64
	for i := range fs1.LagBkts {
		cb += float64(p.fs0.LagBkts[i])
		ca += float64(fs1.LagBkts[i])
		le := 1e300
		if i < len(floor.LagBounds) {
			le = floor.LagBounds[i]
		}
		before[le], after[le] = cb, ca
	}
	p.side.LagP50 = procstat.Quantile(0.5, before, after)
	p.side.LagP99 = procstat.Quantile(0.99, before, after)
	return nil
}

// timeScrapes times full GETs of /metrics: first as Prometheus asks
// (gzip accepted; the compressed bytes are read, not decoded, so only the
// exporter's time counts), then uncompressed.
func (p *proc) timeScrapes(n int) {
	for _, gz := range []bool{true, false} {
		var ds []float64
		for i := 0; i < n; i++ {
			if d, err := timeGet(p.metricsURL, gz); err == nil {
				ds = append(ds, d.Seconds()*1000)
			}
		}
		if gz {
			p.side.ScrapeMs = medianF(ds)
		} else {
			p.side.ScrapePlainMs = medianF(ds)
		}
	}
}

var rawClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}

func timeGet(url string, gz bool) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	start := time.Now()
	resp, err := rawClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (p *proc) stop() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
	}
	if p.stderr != nil {
		p.stderr.Close()
	}
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func scrape(url string) (procstat.Metrics, time.Duration, error) {
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return procstat.Metrics{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(start)
	if err != nil {
		return procstat.Metrics{}, d, err
	}
	if resp.StatusCode != 200 {
		return procstat.Metrics{}, d, fmt.Errorf("%s: %s", url, resp.Status)
	}
	m, err := procstat.ParseMetrics(strings.NewReader(string(body)))
	return m, d, err
}

// savePprof saves /debug/pprof/what from addr into path. wait is how long
// the profile takes to answer (a CPU profile's seconds): the request
// may take that long plus a minute. A request given up early stops a
// CPU profile on the exporter's side, silently changing what the rest
// of the window measures.
func savePprof(addr, what, path string, wait time.Duration) {
	os.MkdirAll(filepath.Dir(path), 0o755)
	c := &http.Client{Timeout: wait + time.Minute}
	resp, err := c.Get("http://" + addr + "/debug/pprof/" + what)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: pprof %s: %v\n", what, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

func freePort() int {
	p, err := testutil.PickPort(net.Listen)
	if err != nil {
		fatalf("%v", err)
	}
	return p
}

// dieWithHarness has the kernel send SIGTERM to cmd's process when the
// harness dies, however it dies (SIGKILL included), so that an
// interrupted run leaves no exporter, floor, farm or nginx behind (nginx's
// master takes its workers down on SIGTERM). The signal follows the
// thread that started the child; the Go runtime never ends its threads
// unless a goroutine exits while locked to one, which the harness does
// not do.
func dieWithHarness(cmd *exec.Cmd) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	return cmd
}
