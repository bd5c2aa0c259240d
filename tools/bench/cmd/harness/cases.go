// Cases: what one benchmark configuration is, the predefined suites, and
// how one run of a case drives farm, exporter and floor.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/confgen"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/farm"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/floor"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/procstat"
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
	// Signals is SignalsAll (error log, running nginx, saturation, status
	// page and API) or SignalsProbes (probes and saturation only).
	Signals string
}

func suiteCases(name string, base Case) []Case {
	mixed := []string{"tcp", "http", "https", "fastcgi"}
	mk := func(n string, targets int, mix []string, f func(*Case)) Case {
		c := base
		c.Name, c.Targets, c.Mix, c.Parallel = n, targets, mix, true
		c.Interval = 15 * time.Second
		if c.Signals == "" {
			// At 10,000 targets the exporter runs as deployed: every
			// signal on. The 1k cases compare the probing alone.
			c.Signals = SignalsProbes
			if targets >= 10000 {
				c.Signals = SignalsAll
			}
		}
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

	Signals *SignalCheck // with -signals all
	Pages   []PageTiming // fetches during the window, with -signals all
	Samples []Sample     // every -sample-every, in the soak
}

// Sample is one reading of the exporter during the soak.
type Sample struct {
	T          time.Duration // since the window began
	RSS        int64
	HeapInuse  float64 // go_memstats_heap_inuse_bytes
	NextGC     float64 // go_memstats_next_gc_bytes
	Goroutines float64
	FDs        int
}

// Rate is probes per second achieved in the window.
func (s Side) Rate() float64 { return s.Probes / s.Window.Seconds() }

// CPUPer1k is CPU seconds per 1,000 probes (= ms per probe).
func (s Side) CPUPer1k() float64 { return s.CPU.Seconds() / s.Probes * 1000 }

func runCase(c Case, o options, b binaries) (Result, error) {
	var res Result
	dir, err := os.MkdirTemp(o.workdir, "case-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	files := newCaseFiles(dir)
	all := c.Signals == SignalsAll
	var nginxBin string
	if all {
		if nginxBin, err = findNginx(); err != nil {
			return res, err
		}
	}
	// The farm: a separate process, so its CPU is never counted; with
	// every signal on it also writes nginx's error log.
	var logArgs []string
	if all {
		rotate := time.Duration(0)
		if c.Soak {
			rotate = o.rotateEvery
		}
		logArgs = []string{"-errorlog", files.errorLog, "-log-interval", c.Interval.String(),
			"-rotate-every", rotate.String(), "-nginx-pid", files.pidFile}
	}
	fm, stopFarm, err := startFarm(c, b, dir, logArgs...)
	if err != nil {
		return res, err
	}
	defer stopFarm()

	var ct []confgen.Target
	var ft []floor.Target
	failing := 0
	for i, t := range fm.Targets {
		if t.Mode != farm.ModeOK {
			failing++
		}
		ct = append(ct, confgen.Target{Kind: t.Kind, Addr: t.Addr})
		kind := t.Kind
		if kind == farm.KindTCP && o.tcpProbe == "memcached" {
			kind = "memcached"
		}
		ft = append(ft, floor.Target{Kind: kind, Addr: t.Addr, Name: confgen.Name(i)})
	}
	copts := confgen.Options{Timeout: c.Timeout, Files: c.Files}
	if all {
		copts.Listen = fmt.Sprintf("127.0.0.1:%d", freePort())
		copts.ErrorLog, copts.PIDFile, copts.RunDir, copts.User = files.errorLog, files.pidFile, files.runDir, confgen.NginxUser()
	}
	confPath, err := confgen.Write(dir, ct, copts)
	if err != nil {
		return res, err
	}
	exporterArgs := o.exporterArgs
	var ngx *nginxProc
	if all {
		if ngx, err = startNginx(nginxBin, confPath, files); err != nil {
			return res, err
		}
		defer ngx.stop()
	} else {
		// Probes (and saturation, which is always on) only: no error log,
		// and no nginx to find through the default pid file.
		exporterArgs = "--no-nginx.error-log.enabled --nginx.pid-file=" + filepath.Join(dir, "no-nginx.pid") + " " + exporterArgs
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
		exp, err = startExporter(b.exporter, confPath, interval, c.Concurrency, exporterArgs, dir, o.pprofDir != "")
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
			exp.peakProfile = filepath.Join(o.pprofDir, slug(c.Name)+".heap-peak.pprof")
			// The window's first reading counts toward RSS max: what
			// the heap holds then.
			savePprof(exp.pprofAddr, "heap?debug=1", filepath.Join(o.pprofDir, slug(c.Name)+".heap-start.txt"), 0)
			savePprof(exp.pprofAddr, "heap", filepath.Join(o.pprofDir, slug(c.Name)+".heap-start.pprof"), 0)
			if o.pprofCPU {
				profDone = make(chan struct{})
				secs := max(1, int(o.duration.Seconds())-1)
				go func() {
					defer close(profDone)
					savePprof(exp.pprofAddr, fmt.Sprintf("profile?seconds=%d", secs), filepath.Join(o.pprofDir, slug(c.Name)+".cpu.pprof"), time.Duration(secs)*time.Second)
				}()
			}
		}
		var pg *pages
		stopBg := make(chan struct{})
		var bg sync.WaitGroup
		if exp != nil && all {
			pg = &pages{base: strings.TrimSuffix(exp.metricsURL, "/metrics")}
			bg.Go(func() { pg.run(stopBg) })
		}
		var reloadErr error
		if ngx != nil && c.Soak && o.reloadEvery > 0 {
			bg.Go(func() {
				t := time.NewTicker(o.reloadEvery)
				defer t.Stop()
				for {
					select {
					case <-stopBg:
						return
					case <-t.C:
						if err := ngx.reload(); err != nil && reloadErr == nil {
							reloadErr = err
						}
						logf(o, "nginx reloaded (%d)", ngx.reloads)
					}
				}
			})
		}
		sampleUntil(time.Now().Add(o.duration), o.sampleEvery, c.Soak, exp, flr)
		close(stopBg)
		bg.Wait()
		if reloadErr != nil {
			return reloadErr
		}
		if ngx != nil && !ngx.alive() {
			return errors.New("nginx exited during the window")
		}
		if profDone != nil {
			<-profDone
			savePprof(exp.pprofAddr, "heap", filepath.Join(o.pprofDir, slug(c.Name)+".heap.pprof"), 0)
			// The text form ends with runtime.MemStats: where RSS goes
			// beyond the live heap (GC headroom, stacks, unreturned pages).
			savePprof(exp.pprofAddr, "heap?debug=1", filepath.Join(o.pprofDir, slug(c.Name)+".heap.txt"), 0)
		}
		if exp != nil {
			if err := exp.end(); err != nil {
				return err
			}
			if all {
				sc := &SignalCheck{
					Failing:      failing > 0,
					LogMatched:   exp.m1.LogMatched - exp.m0.LogMatched,
					LogLines:     exp.m1.LogLines - exp.m0.LogLines,
					NginxUp:      exp.m1.NginxUp,
					ReloadsSeen:  exp.m1.NginxReloads - exp.m0.NginxReloads,
					CapacityRows: exp.m1.CapacitySamples,
				}
				if ngx != nil {
					sc.Reloads = ngx.reloads
				}
				exp.side.Signals = sc
				exp.side.Pages = pg.timings()
				if p := sc.problems(); len(p) > 0 {
					return fmt.Errorf("-signals all, but not every signal is live: %s", strings.Join(p, "; "))
				}
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
	for at := range sampleTimes(t0, end, every, rand.Int64N) {
		time.Sleep(time.Until(at))
		for _, p := range ps {
			if p == nil {
				continue
			}
			s, err := procstat.Read(p.cmd.Process.Pid)
			if err != nil {
				continue
			}
			// A new peak, 1 MB above the last: the heap profile then
			// (the live set of the latest collection) names what holds
			// the memory, which a profile at the window's end, after the
			// peak has gone, does not.
			if p.peakProfile != "" && p.side.RSSMax > 0 && s.RSS > p.side.RSSMax+1e6 {
				// One file per peak: a later peak must not hide what
				// set an earlier one.
				at := time.Since(t0).Round(time.Second)
				path := strings.TrimSuffix(p.peakProfile, ".pprof") + "-" + at.String() + ".pprof"
				savePprof(p.pprofAddr, "heap", path, 0)
				savePprof(p.pprofAddr, "heap?debug=1", path+".txt", 0)
				fmt.Fprintf(os.Stderr, "harness: %s RSS peak %.1f MB at %s: heap profile in %s\n",
					p.name, float64(s.RSS)/1e6, at, path)
			}
			p.side.RSSMax = max(p.side.RSSMax, s.RSS)
			if soak {
				fds := countFDs(p.cmd.Process.Pid)
				g := ""
				if p.metricsURL != "" {
					if m, _, err := scrape(p.metricsURL); err == nil {
						g = fmt.Sprintf(" heap_inuse=%.1fMB next_gc=%.1fMB goroutines=%.0f in_flight=%.0f queue=%.0f",
							m.HeapInuse/1e6, m.NextGC/1e6, m.Goroutines, m.InFlight, m.Queue)
						p.side.Samples = append(p.side.Samples, Sample{T: time.Since(t0), RSS: s.RSS,
							HeapInuse: m.HeapInuse, NextGC: m.NextGC, Goroutines: m.Goroutines, FDs: fds})
					}
				}
				fmt.Fprintf(os.Stderr, "soak t=%5.0fs %-8s rss=%6.1fMB threads=%d fds=%d%s\n",
					time.Since(t0).Seconds(), p.name, float64(s.RSS)/1e6, s.Threads, fds, g)
				// In a soak, a profile at every sample: a rise that is
				// not a new peak (after an earlier, higher one) still
				// has its profile to compare with the steady ones.
				if p.peakProfile != "" {
					at := time.Since(t0).Round(time.Second)
					savePprof(p.pprofAddr, "heap", strings.TrimSuffix(p.peakProfile, ".heap-peak.pprof")+".heap-at-"+at.String()+".pprof", 0)
				}
			}
		}
	}
}

// sampleTimes are the moments to sample the window from t0 to end: one at
// a random moment of each period of length every. Sampling every `every`
// after the last sample ends drifts by the sampling's own duration (0.1-
// 0.2 s per sample) against the page fetchers' fixed 15 s and 30 s
// tickers: the samples then fall inside the scrapes for minutes on end,
// and outside them for the next three quarters of an hour (the 30 s soak's
// samples, 0.165 s late each, came back into phase with /metrics every
// 45.5 minutes and read 6-15 MB more each time). A random moment in each period is as likely
// to fall on a scrape at every point of the window.
func sampleTimes(t0, end time.Time, every time.Duration, randN func(int64) int64) iter.Seq[time.Time] {
	return func(yield func(time.Time) bool) {
		if !t0.Add(every).After(end) {
			for k := time.Duration(0); !t0.Add((k + 1) * every).After(end); k++ {
				if !yield(t0.Add(k*every + time.Duration(randN(int64(every))))) {
					return
				}
			}
			return
		}
		// A window shorter than one period still gets its sample.
		if d := end.Sub(t0); d > 0 {
			yield(t0.Add(time.Duration(randN(int64(d)))))
		}
	}
}

// countFDs counts the open descriptors of pid; -1 when unreadable.
func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// proc is a measured process.
