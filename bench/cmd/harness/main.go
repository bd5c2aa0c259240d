// Command harness measures nginx_upstream_exporter against a minimal
// "floor" prober doing the same I/O on the same schedule, against a farm of
// loopback targets running in a separate process.
//
//	go run ./bench/cmd/harness -suite standard -runs 3 -duration 60s -out bench/results.md
//	go run ./bench/cmd/harness -targets 1000 -mix tcp -duration 60s
//
// See docs/performance.md for what each number means.
package main

import (
	"bufio"

	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/bench/confgen"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/bench/farm"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/bench/floor"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/bench/procstat"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// Case is one benchmark configuration.
type Case struct {
	Name        string
	Targets     int
	Mix         []string // kinds, targets split evenly
	Interval    time.Duration
	Concurrency int
	Timeout     time.Duration
	Refuse      float64
	Hang        float64
	Closed      bool // closed loop: interval far shorter than achievable
	Parallel    bool // exporter and floor measured at the same time
	Soak        bool // print a time series of RSS and goroutines
	Files       int  // spread the generated config over this many files
}

type options struct {
	duration, warmup time.Duration
	runs             int
	which            string
	workdir          string
	exporter         string
	exporterArgs     string
	scrapes          int
	sampleEvery      time.Duration
	verbose          bool
	tcpProbe         string
	pprofDir         string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "farm" {
		runFarm(os.Args[2:])
		return
	}
	var c Case
	var o options
	var mix, suite, out, mode string
	flag.StringVar(&suite, "suite", "", "run a predefined set of cases: standard, quick, soak (overrides the single-case flags)")
	flag.IntVar(&c.Targets, "targets", 1000, "number of upstream servers")
	flag.StringVar(&mix, "mix", "tcp", "comma-separated kinds (tcp,http,https,fastcgi), targets split evenly")
	flag.DurationVar(&c.Interval, "interval", 15*time.Second, "probe interval per target")
	flag.IntVar(&c.Concurrency, "concurrency", 512, "--probe.concurrency of the exporter and the floor")
	flag.DurationVar(&c.Timeout, "timeout", 5*time.Second, "nginx *_timeout written to the config, and the floor's timeout")
	flag.Float64Var(&c.Refuse, "refuse", 0, "fraction of targets with nothing listening")
	flag.Float64Var(&c.Hang, "hang", 0, "fraction of targets that hang until the timeout")
	flag.BoolVar(&c.Closed, "closed", false, "closed loop: demand far above capacity, measure the max sustained rate")
	flag.StringVar(&mode, "mode", "", "parallel or sequential (default: parallel, sequential for -closed)")
	flag.IntVar(&c.Files, "files", 1, "spread the generated nginx config over this many included files")
	flag.BoolVar(&c.Soak, "soak", false, "print RSS/goroutines every -sample-every during the window")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "measurement window per run")
	flag.DurationVar(&o.warmup, "warmup", 0, "time before the window (default: one interval, at most 20s; 5s closed loop)")
	flag.IntVar(&o.runs, "runs", 1, "repeat each case; medians are reported")
	flag.StringVar(&o.which, "which", "both", "exporter, floor or both")
	flag.StringVar(&o.workdir, "workdir", "", "where binaries and configs go (default: a temp dir)")
	flag.StringVar(&o.exporter, "exporter", "", "exporter binary (default: go build at the repository root)")
	flag.StringVar(&o.exporterArgs, "exporter-args", "", "extra exporter flags, space-separated")
	flag.IntVar(&o.scrapes, "scrapes", 5, "timed /metrics scrapes after the window")
	flag.DurationVar(&o.sampleEvery, "sample-every", time.Second, "RSS sampling period")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.StringVar(&o.tcpProbe, "tcp-probe", "auto", "what the floor does for tcp targets, which the config declares with memcached_pass: connect, memcached (connect + get + read a line), or auto (memcached when the exporter has a memcached prober)")
	flag.StringVar(&o.pprofDir, "pprof", "", "build the exporter with net/http/pprof on a side port (through go build -overlay, the tree is not changed) and save a CPU profile of each window and a heap profile at its end into this directory")
	flag.StringVar(&out, "out", "", "also write the markdown report here")
	flag.Parse()
	c.Mix = strings.Split(mix, ",")
	switch mode {
	case "parallel":
		c.Parallel = true
	case "sequential":
	case "":
		c.Parallel = !c.Closed
	default:
		fatalf("-mode: parallel or sequential")
	}

	if o.tcpProbe == "auto" {
		o.tcpProbe = "connect"
		if _, ok := prober.New()["memcached"]; ok {
			o.tcpProbe = "memcached"
		}
	}
	raiseNofile()
	if o.workdir == "" {
		d, err := os.MkdirTemp("", "upstream-bench-")
		if err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(d)
		o.workdir = d
	}
	bins := build(o)

	var cases []Case
	switch suite {
	case "":
		c.Name = fmt.Sprintf("%d %s", c.Targets, strings.Join(c.Mix, "+"))
		cases = []Case{c}
	default:
		cases = suiteCases(suite, c)
		if cases == nil {
			fatalf("unknown -suite %q", suite)
		}
	}

	var report strings.Builder
	fmt.Fprintf(&report, "%s\n\n", describeMachine(o))
	fmt.Fprint(&report, tableHeader)
	fmt.Print(report.String())
	for _, k := range cases {
		var results []Result
		for r := 0; r < o.runs; r++ {
			logf(o, "case %q run %d/%d", k.Name, r+1, o.runs)
			res, err := runCase(k, o, bins)
			if err != nil {
				fatalf("case %q: %v", k.Name, err)
			}
			results = append(results, res)
		}
		rows := tableRows(k, median(results))
		fmt.Print(rows)
		report.WriteString(rows)
	}
	if out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

func suiteCases(name string, base Case) []Case {
	mixed := []string{"tcp", "http", "https", "fastcgi"}
	mk := func(n string, targets int, mix []string, f func(*Case)) Case {
		c := base
		c.Name, c.Targets, c.Mix, c.Parallel = n, targets, mix, true
		c.Interval = 15 * time.Second
		if f != nil {
			f(&c)
		}
		return c
	}
	closed := func(c *Case) {
		c.Closed, c.Parallel = true, false
		c.Concurrency = 512
	}
	switch name {
	case "standard":
		return []Case{
			mk("1k tcp /15s", 1000, []string{"tcp"}, nil),
			mk("1k http /15s", 1000, []string{"http"}, nil),
			mk("1k https /15s", 1000, []string{"https"}, nil),
			mk("1k fastcgi /15s", 1000, []string{"fastcgi"}, nil),
			mk("1k tcp /1s (1,000 probes/s)", 1000, []string{"tcp"}, func(c *Case) { c.Interval = time.Second }),
			mk("10k mixed /15s", 10000, mixed, nil),
			mk("10k mixed /15s, 10% hang", 10000, mixed, func(c *Case) { c.Hang = 0.10 }),
			mk("closed loop tcp", 1000, []string{"tcp"}, closed),
		}
	case "quick":
		return []Case{
			mk("1k tcp /15s", 1000, []string{"tcp"}, nil),
			mk("closed loop tcp", 1000, []string{"tcp"}, closed),
		}
	case "soak":
		return []Case{
			// 2,500 targets hanging for 2 s every 15 s keep ~330 of the
			// 512 probe slots busy: heavy, but within capacity.
			mk("soak 10k mixed, half failing", 10000, mixed, func(c *Case) {
				c.Refuse, c.Hang, c.Soak, c.Timeout = 0.25, 0.25, true, 2*time.Second
			}),
		}
	}
	return nil
}

// Result is what one run of a case measured.
type Result struct {
	Exporter, Floor Side
}

// Side is the measurement of one prober.
type Side struct {
	Ran           bool
	Probes        float64
	Failures      float64
	Window        time.Duration
	CPU           time.Duration
	RSSEnd        int64
	RSSMax        int64
	LagP50        float64
	LagP99        float64
	ScrapeMs      float64 // median /metrics time with gzip (exporter only)
	ScrapePlainMs float64 // the same without compression
	Series        int
	Goroutines0   float64
	Goroutines1   float64
	RSS0          int64
}

// Rate is probes per second achieved in the window.
func (s Side) Rate() float64 { return s.Probes / s.Window.Seconds() }

// CPUPer1k is CPU seconds per 1,000 probes (= ms per probe).
func (s Side) CPUPer1k() float64 { return s.CPU.Seconds() / s.Probes * 1000 }

type binaries struct{ exporter, floor, self string }

func build(o options) binaries {
	root := repoRoot()
	b := binaries{exporter: o.exporter, floor: filepath.Join(o.workdir, "floor")}
	self, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	b.self = self
	if b.exporter == "" && o.which != "floor" {
		b.exporter = filepath.Join(o.workdir, "nginx_upstream_exporter")
		if o.pprofDir != "" {
			goBuildPprof(root, o.workdir, b.exporter)
		} else {
			goBuild(root, b.exporter, ".")
		}
	}
	goBuild(root, b.floor, "./bench/cmd/floor")
	return b
}

func goBuild(dir, out, pkg string) {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fatalf("go build %s: %v", pkg, err)
	}
}

// pprofFile is added to the exporter's main package for profiling builds.
const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("BENCH_PPROF_ADDR"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

func goBuildPprof(root, workdir, out string) {
	src := filepath.Join(workdir, "bench_pprof.go")
	overlay := filepath.Join(workdir, "overlay.json")
	os.WriteFile(src, []byte(pprofFile), 0o644)
	raw, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "zz_bench_pprof.go"): src}})
	os.WriteFile(overlay, raw, 0o644)
	cmd := exec.Command("go", "build", "-overlay", overlay, "-o", out, ".")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fatalf("go build (pprof): %v", err)
	}
}

func repoRoot() string {
	outp, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(outp)) == "" {
		fatalf("run the harness inside the repository: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(outp)))
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

func runCase(c Case, o options, b binaries) (Result, error) {
	var res Result
	dir, err := os.MkdirTemp(o.workdir, "case-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	// The farm: a separate process, so its CPU is never counted.
	fm, stopFarm, err := startFarm(c, b, dir)
	if err != nil {
		return res, err
	}
	defer stopFarm()

	var ct []confgen.Target
	var ft []floor.Target
	for i, t := range fm.Targets {
		ct = append(ct, confgen.Target{Kind: t.Kind, Addr: t.Addr})
		kind := t.Kind
		if kind == farm.KindTCP && o.tcpProbe == "memcached" {
			kind = "memcached"
		}
		ft = append(ft, floor.Target{Kind: kind, Addr: t.Addr, Name: confgen.Name(i)})
	}
	confPath, err := confgen.Write(dir, ct, confgen.Options{Timeout: c.Timeout, Files: c.Files})
	if err != nil {
		return res, err
	}
	ftPath := filepath.Join(dir, "floor-targets.json")
	raw, _ := json.Marshal(ft)
	if err := os.WriteFile(ftPath, raw, 0o644); err != nil {
		return res, err
	}

	interval := c.Interval
	if c.Closed {
		// Ask for ~50,000 probes/s: far above what either side sustains.
		interval = time.Duration(c.Targets) * time.Second / 50000
	}
	warmup := o.warmup
	if warmup == 0 {
		warmup = min(interval, 20*time.Second)
		if c.Closed {
			warmup = 5 * time.Second
		}
	}

	runExp := o.which != "floor"
	runFloor := o.which != "exporter"
	var exp, flr *proc
	startExp := func() error {
		exp, err = startExporter(b.exporter, confPath, interval, c.Concurrency, o.exporterArgs, dir, o.pprofDir != "")
		return err
	}
	startFloor := func() error {
		flr, err = startFloor(b.floor, ftPath, interval, c.Concurrency, c.Timeout)
		return err
	}
	measure := func(exp, flr *proc) error {
		time.Sleep(warmup)
		if exp != nil {
			if err := exp.begin(); err != nil {
				return err
			}
		}
		if flr != nil {
			if err := flr.begin(); err != nil {
				return err
			}
		}
		var profDone chan struct{}
		if exp != nil && exp.pprofAddr != "" {
			profDone = make(chan struct{})
			secs := max(1, int(o.duration.Seconds())-1)
			go func() {
				defer close(profDone)
				savePprof(exp.pprofAddr, fmt.Sprintf("profile?seconds=%d", secs), filepath.Join(o.pprofDir, slug(c.Name)+".cpu.pprof"))
			}()
		}
		sampleUntil(time.Now().Add(o.duration), o.sampleEvery, c.Soak, exp, flr)
		if profDone != nil {
			<-profDone
			savePprof(exp.pprofAddr, "heap", filepath.Join(o.pprofDir, slug(c.Name)+".heap.pprof"))
			// The text form ends with runtime.MemStats: where RSS goes
			// beyond the live heap (GC headroom, stacks, unreturned pages).
			savePprof(exp.pprofAddr, "heap?debug=1", filepath.Join(o.pprofDir, slug(c.Name)+".heap.txt"))
		}
		if exp != nil {
			if err := exp.end(); err != nil {
				return err
			}
			exp.timeScrapes(o.scrapes)
		}
		if flr != nil {
			if err := flr.end(); err != nil {
				return err
			}
		}
		return nil
	}
	if c.Parallel {
		if runExp {
			if err := startExp(); err != nil {
				return res, err
			}
			defer exp.stop()
		}
		if runFloor {
			if err := startFloor(); err != nil {
				return res, err
			}
			defer flr.stop()
		}
		if err := measure(exp, flr); err != nil {
			return res, err
		}
	} else {
		if runExp {
			if err := startExp(); err != nil {
				return res, err
			}
			err := measure(exp, nil)
			exp.stop()
			if err != nil {
				return res, err
			}
		}
		if runFloor {
			if err := startFloor(); err != nil {
				return res, err
			}
			err := measure(nil, flr)
			flr.stop()
			if err != nil {
				return res, err
			}
		}
	}
	if exp != nil {
		res.Exporter = exp.side
	}
	if flr != nil {
		res.Floor = flr.side
	}
	return res, nil
}

func sampleUntil(end time.Time, every time.Duration, soak bool, ps ...*proc) {
	t0 := time.Now()
	for time.Now().Before(end) {
		time.Sleep(min(every, time.Until(end)))
		for _, p := range ps {
			if p == nil {
				continue
			}
			s, err := procstat.Read(p.cmd.Process.Pid)
			if err != nil {
				continue
			}
			p.side.RSSMax = max(p.side.RSSMax, s.RSS)
			if soak {
				g := ""
				if p.metricsURL != "" {
					if m, _, err := scrape(p.metricsURL); err == nil {
						g = fmt.Sprintf(" goroutines=%.0f in_flight=%.0f queue=%.0f", m.Goroutines, m.InFlight, m.Queue)
					}
				}
				fmt.Fprintf(os.Stderr, "soak t=%5.0fs %-8s rss=%6.1fMB threads=%d%s\n",
					time.Since(t0).Seconds(), p.name, float64(s.RSS)/1e6, s.Threads, g)
			}
		}
	}
}

// proc is a measured process.
type proc struct {
	name       string
	cmd        *exec.Cmd
	metricsURL string         // exporter
	pprofAddr  string         // exporter built with -pprof
	lines      *bufio.Scanner // floor's stats
	side       Side

	t0     time.Time
	s0     procstat.Sample
	m0     procstat.Metrics
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
		"--log.level=warn",
	}
	args = append(args, strings.Fields(extra)...)
	cmd := exec.Command(bin, args...)
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
	cmd := exec.Command(bin, "-targets", targets, "-interval", interval.String(),
		fmt.Sprintf("-concurrency=%d", conc), "-timeout", timeout.String())
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

func savePprof(addr, what, path string) {
	os.MkdirAll(filepath.Dir(path), 0o755)
	c := &http.Client{Timeout: 10 * time.Minute}
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// --- farm process ---

type farmManifest struct {
	Targets []farm.Target `json:"targets"`
	CAFile  string        `json:"ca_file"`
}

func startFarm(c Case, b binaries, dir string) (*farmManifest, func(), error) {
	per := c.Targets / len(c.Mix)
	args := []string{"farm", "-dir", dir, fmt.Sprintf("-refuse=%g", c.Refuse), fmt.Sprintf("-hang=%g", c.Hang)}
	for i, k := range c.Mix {
		n := per
		if i == 0 {
			n += c.Targets - per*len(c.Mix)
		}
		args = append(args, fmt.Sprintf("-%s=%d", k, n))
	}
	cmd := exec.Command(b.self, args...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	var m farmManifest
	if err := json.NewDecoder(stdout).Decode(&m); err != nil {
		stop()
		return nil, nil, fmt.Errorf("farm: %v", err)
	}
	return &m, stop, nil
}

func runFarm(args []string) {
	fs := flag.NewFlagSet("farm", flag.ExitOnError)
	spec := farm.Spec{Counts: map[string]int{}}
	counts := map[string]*int{}
	for _, k := range farm.Kinds {
		counts[k] = fs.Int(k, 0, "targets of kind "+k)
	}
	fs.Float64Var(&spec.Refuse, "refuse", 0, "")
	fs.Float64Var(&spec.Hang, "hang", 0, "")
	fs.Uint64Var(&spec.Seed, "seed", uint64(time.Now().UnixNano()), "")
	dir := fs.String("dir", ".", "where ca.pem goes")
	fs.Parse(args)
	for k, n := range counts {
		spec.Counts[k] = *n
	}
	f, err := farm.Start(spec)
	if err != nil {
		fatalf("%v", err)
	}
	defer f.Close()
	caFile := filepath.Join(*dir, "ca.pem")
	os.WriteFile(caFile, f.CAPEM, 0o644)
	json.NewEncoder(os.Stdout).Encode(farmManifest{Targets: f.Targets, CAFile: caFile})
	// Serve until the harness closes our stdin (or dies).
	io.Copy(io.Discard, os.Stdin)
}

// --- reporting ---

const tableHeader = `| case | metric | exporter | floor | exporter/floor | target |
|---|---|---:|---:|---:|---|
`

func tableRows(c Case, r Result) string {
	var b strings.Builder
	e, f := r.Exporter, r.Floor
	row := func(metric, ev, fv, ratio, target string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.Name, metric, ev, fv, ratio, target)
	}
	num := func(ran bool, v float64, format string) string {
		if !ran || v != v {
			return "–"
		}
		return fmt.Sprintf(format, v)
	}
	ratio := func(a, b float64) string {
		if !e.Ran || !f.Ran || b == 0 || a != a || b != b {
			return "–"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	if c.Closed {
		row("probes/s (closed loop)", num(e.Ran, e.Rate(), "%.0f"), num(f.Ran, f.Rate(), "%.0f"), ratio(e.Rate(), f.Rate()), "exporter ≥ 10,000/s")
		row("CPU ms per probe", num(e.Ran, e.CPUPer1k(), "%.3f"), num(f.Ran, f.CPUPer1k(), "%.3f"), ratio(e.CPUPer1k(), f.CPUPer1k()), "")
	} else {
		tgt := ""
		if len(c.Mix) == 1 || c.Targets >= 10000 {
			tgt = "≤ 1.2×"
		}
		row("CPU s per 1,000 probes", num(e.Ran, e.CPUPer1k(), "%.3f"), num(f.Ran, f.CPUPer1k(), "%.3f"), ratio(e.CPUPer1k(), f.CPUPer1k()), tgt)
		row("probes/s", num(e.Ran, e.Rate(), "%.1f"), num(f.Ran, f.Rate(), "%.1f"), ratio(e.Rate(), f.Rate()), "")
		lt := ""
		if c.Targets >= 10000 {
			lt = "p99 < 1 s"
		}
		row("schedule lag p50 / p99 (ms)", lagStr(e), lagStr(f), "", lt)
	}
	rt := ""
	if c.Targets >= 10000 {
		rt = "< 100 MB"
	}
	row("RSS max (MB)", num(e.Ran, float64(e.RSSMax)/1e6, "%.1f"), num(f.Ran, float64(f.RSSMax)/1e6, "%.1f"), ratio(float64(e.RSSMax), float64(f.RSSMax)), rt)
	if c.Soak {
		drift := func(s Side) string {
			if !s.Ran {
				return "–"
			}
			return fmt.Sprintf("%.1f → %.1f", float64(s.RSS0)/1e6, float64(s.RSSEnd)/1e6)
		}
		row("RSS window start → end (MB)", drift(e), drift(f), "", "flat")
		if e.Ran {
			row("goroutines window start → end", fmt.Sprintf("%.0f → %.0f", e.Goroutines0, e.Goroutines1), "", "", "flat")
		}
	}
	fail := func(s Side) string { return num(s.Ran, 100*s.Failures/max(s.Probes, 1), "%.1f %%") }
	row("failed probes", fail(e), fail(f), "", "")
	if e.Ran {
		st := ""
		if c.Targets >= 10000 {
			st = "< 100 ms"
		}
		row(fmt.Sprintf("/metrics ms, gzip / plain (%d series)", e.Series), fmt.Sprintf("%.1f / %.1f", e.ScrapeMs, e.ScrapePlainMs), "", "", st)
	}
	return b.String()
}

func lagStr(s Side) string {
	if !s.Ran {
		return "–"
	}
	return fmt.Sprintf("%.2f / %.2f", s.LagP50*1000, s.LagP99*1000)
}

func median(rs []Result) Result {
	if len(rs) == 1 {
		return rs[0]
	}
	pick := func(get func(Result) Side) Side {
		var sides []Side
		for _, r := range rs {
			sides = append(sides, get(r))
		}
		m := sides[0]
		f := func(g func(Side) float64) float64 {
			var v []float64
			for _, s := range sides {
				v = append(v, g(s))
			}
			return medianF(v)
		}
		// CPU and probes are medians of the per-run ratios, carried as
		// CPU over a fixed 1,000,000-probe count so Rate/CPUPer1k still work.
		cpu := f(func(s Side) float64 { return s.CPUPer1k() })
		rate := f(func(s Side) float64 { return s.Rate() })
		m.Window = time.Second
		m.Probes = rate
		m.CPU = time.Duration(cpu / 1000 * rate * float64(time.Second))
		m.Failures = f(func(s Side) float64 { return s.Failures / max(s.Probes, 1) }) * rate
		m.RSSMax = int64(f(func(s Side) float64 { return float64(s.RSSMax) }))
		m.LagP50 = f(func(s Side) float64 { return s.LagP50 })
		m.LagP99 = f(func(s Side) float64 { return s.LagP99 })
		m.ScrapeMs = f(func(s Side) float64 { return s.ScrapeMs })
		m.ScrapePlainMs = f(func(s Side) float64 { return s.ScrapePlainMs })
		return m
	}
	return Result{Exporter: pick(func(r Result) Side { return r.Exporter }), Floor: pick(func(r Result) Side { return r.Floor })}
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func describeMachine(o options) string {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	gover, _ := exec.Command("go", "env", "GOVERSION").Output()
	return fmt.Sprintf("Machine: %d CPUs (%s), %s. Window %s per run, %d run(s), medians. tcp targets (memcached_pass) probed by the floor as: %s.",
		numCPU(), cpu, strings.TrimSpace(string(gover)), o.duration, o.runs, o.tcpProbe)
}

func numCPU() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func logf(o options, format string, args ...any) {
	if o.verbose {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "harness: "+format+"\n", args...)
	os.Exit(1)
}
