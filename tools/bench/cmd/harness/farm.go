// The target farm runs as a child process ("harness farm") so that its
// CPU time is never counted against the prober being measured.

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/confgen"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/farm"
)

type farmManifest struct {
	Targets []farm.Target `json:"targets"`
	CAFile  string        `json:"ca_file"`
}

func startFarm(c Case, b binaries, dir string, extra ...string) (*farmManifest, func(), error) {
	per := c.Targets / len(c.Mix)
	args := []string{"farm", "-dir", dir, fmt.Sprintf("-refuse=%g", c.Refuse), fmt.Sprintf("-hang=%g", c.Hang)}
	for i, k := range c.Mix {
		n := per
		if i == 0 {
			n += c.Targets - per*len(c.Mix)
		}
		args = append(args, fmt.Sprintf("-%s=%d", k, n))
	}
	args = append(args, extra...)
	cmd := dieWithHarness(exec.Command(b.self, args...))
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
	var lw farm.LogWriter
	fs.StringVar(&lw.Path, "errorlog", "", "append nginx error-log lines for the failing targets to this file")
	fs.DurationVar(&lw.Interval, "log-interval", 15*time.Second, "one line per failing target per this interval")
	fs.DurationVar(&lw.RotateEvery, "rotate-every", 0, "rename and reopen the error log this often (0: never)")
	fs.StringVar(&lw.PIDFile, "nginx-pid", "", "nginx's pid file: nginx is told to reopen its logs after a rotation")
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
	stop := make(chan struct{})
	logDone := make(chan struct{})
	if lw.Path != "" {
		lw.Targets, lw.Names, lw.Server = f.Targets, confgen.Name, "main.bench.test"
		go func() {
			defer close(logDone)
			if err := lw.Run(stop); err != nil {
				fmt.Fprintf(os.Stderr, "farm: %v\n", err)
			}
		}()
	} else {
		close(logDone)
	}
	// Serve until the harness closes our stdin (or dies).
	io.Copy(io.Discard, os.Stdin)
	close(stop)
	<-logDone
}
