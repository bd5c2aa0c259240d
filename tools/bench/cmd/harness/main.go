// Command harness measures nginx_upstream_exporter against a minimal
// "floor" prober doing the same I/O on the same schedule, against a farm of
// loopback targets running in a separate process.
//
//	cd tools/bench && go run ./cmd/harness -suite standard -runs 3 -duration 60s -out results.md
//	cd tools/bench && go run ./cmd/harness -targets 1000 -mix tcp -duration 60s
//	cd tools/bench && go run ./cmd/harness -suite soak -duration 1h -sample-every 30s -out soak.md
//
// The harness is its own module so that none of it is part of the
// exporter's import tree. Its files: cases.go (what is measured and how one
// case runs), processes.go (building and driving the exporter and floor
// processes), farm.go (the target farm, run as "harness farm" in its own
// process), signals.go (-signals all: a running nginx, the status page and
// API fetched during the window, the check that every signal is live),
// report.go (the markdown table and the soak's samples).
//
// See docs/performance.md for what each number means.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

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
	pprofCPU         bool
	reloadEvery      time.Duration
	rotateEvery      time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "farm" {
		runFarm(os.Args[2:])
		return
	}
	var c Case
	var o options
	var mix, suite, out, mode, signals string
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
	flag.DurationVar(&o.sampleEvery, "sample-every", time.Second, "RSS sampling period; in the soak also heap, goroutines and open fds (default 30s with -suite soak)")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.StringVar(&o.tcpProbe, "tcp-probe", "auto", "what the floor does for tcp targets, which the config declares with memcached_pass: connect, memcached (connect + get + read a line), or auto (memcached when the exporter has a memcached prober)")
	flag.StringVar(&o.pprofDir, "pprof", "", "build the exporter with net/http/pprof on a side port (through go build -overlay, the tree is not changed) and save a CPU profile of each window, a heap profile at its end and one at its RSS peak into this directory; BENCH_MEMPROFILERATE in the environment sets the exporter's runtime.MemProfileRate")
	flag.BoolVar(&o.pprofCPU, "pprof-cpu", true, "with -pprof: also profile the exporter's CPU over each window (the profiler holds about 2 MB of the exporter's heap while it runs)")
	flag.StringVar(&signals, "signals", "", "what the exporter has on: all (error log written by the farm, a running nginx on the generated config, saturation, the status page and API fetched during the window) or probes (probes and saturation); default: all for the 10,000-target suite cases and the soak, probes otherwise")
	flag.DurationVar(&o.reloadEvery, "reload-every", 10*time.Minute, "soak with -signals all: nginx -s reload this often")
	flag.DurationVar(&o.rotateEvery, "rotate-every", 3*time.Minute, "soak with -signals all: rotate the error log (rename + reopen) this often")
	flag.StringVar(&out, "out", "", "also write the markdown report here")
	flag.Parse()
	c.Mix = strings.Split(mix, ",")
	switch signals {
	case "", SignalsAll, SignalsProbes:
		c.Signals = signals
	default:
		fatalf("-signals: all or probes")
	}
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
		// The exporter probes the farm's TCP kind with memcached's
		// exchange, which its protocol table always has.
		o.tcpProbe = "memcached"
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
		if c.Signals == "" {
			c.Signals = SignalsProbes
		}
		cases = []Case{c}
	default:
		cases = suiteCases(suite, c)
		if cases == nil {
			fatalf("unknown -suite %q", suite)
		}
	}
	if suite == "soak" && !flagSet("sample-every") {
		// Each soak sample scrapes /metrics: once a second at 10,000
		// targets would be a load of its own.
		o.sampleEvery = 30 * time.Second
	}

	var report strings.Builder
	fmt.Fprintf(&report, "%s\n\n", describeMachine(o))
	fmt.Fprint(&report, tableHeader)
	fmt.Print(report.String())
	var after strings.Builder
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
		m := median(results)
		rows := tableRows(k, m)
		fmt.Print(rows)
		report.WriteString(rows)
		after.WriteString(samplesTable(k, m.Exporter))
	}
	fmt.Print(after.String())
	report.WriteString(after.String())
	if out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
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
