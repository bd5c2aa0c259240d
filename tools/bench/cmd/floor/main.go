// Command floor is the minimal reference prober of the benchmark harness.
// It reads targets as JSON from -targets, probes them on the exporter's
// schedule, and prints a JSON line of cumulative counters to stdout each
// time it receives SIGUSR1.
package main

import (
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/floor"
)

func main() {
	targetsFile := flag.String("targets", "", "JSON file with [{kind, addr, name}]")
	interval := flag.Duration("interval", 15*time.Second, "probe interval per target")
	concurrency := flag.Int("concurrency", 512, "maximum probes in flight")
	timeout := flag.Duration("timeout", 5*time.Second, "per-probe timeout")
	caFile := flag.String("ca", "", "PEM CA to verify https targets (empty: no verification, as nginx's proxy_ssl_verify off)")
	serverName := flag.String("servername", "", "TLS name to verify/send when -ca is set")
	flag.Parse()

	raw, err := os.ReadFile(*targetsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p := &floor.Prober{Interval: *interval, Concurrency: *concurrency, Timeout: *timeout}
	if err := json.Unmarshal(raw, &p.Targets); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p.TLS = floor.ClientTLS(nil, "")
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		p.TLS = floor.ClientTLS(pool, *serverName)
	}

	stop := make(chan struct{})
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		enc := json.NewEncoder(os.Stdout)
		for s := range sig {
			if s != syscall.SIGUSR1 {
				close(stop)
				return
			}
			enc.Encode(p.Snapshot())
		}
	}()
	p.Run(stop)
}
