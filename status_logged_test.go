package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
)

// TestLoggedByTarget: the status page's lookup of what nginx logged finds
// the server the log named, in the report's words, and nothing for
// another; without a log there is no lookup.
func TestLoggedByTarget(t *testing.T) {
	if loggedByTarget(nil) != nil {
		t.Fatal("a lookup without an error log")
	}
	log := filepath.Join(t.TempDir(), "error.log")
	if err := os.WriteFile(log, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	r := errorlog.New(errorlog.Options{Find: errorlog.FindOptions{Paths: []string{log}}, PollInterval: 50 * time.Millisecond})
	tg := &discovery.Target{Key: discovery.Key{Upstream: "app", Server: "127.0.0.1:8001", Address: "127.0.0.1:8001", Protocol: "http"},
		Network: "tcp", Probe: &prober.Peer{Network: "tcp", Address: "127.0.0.1:8001"}}
	other := discovery.Key{Upstream: "app", Server: "127.0.0.1:8002", Address: "127.0.0.1:8002", Protocol: "http"}
	r.Update(&discovery.Set{Targets: []*discovery.Target{tg, {Key: other, Network: "tcp", Probe: &prober.Peer{Network: "tcp", Address: other.Address}}}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	line := fmt.Sprintf("2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"h\"\n", tg.Address)
	lookup := loggedByTarget(r)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The reader starts at the end of the file it finds: the line is
		// written until it has been read.
		f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(line)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		find, done := lookup()
		// A Logged that held another server's: nothing of it is left.
		lg := &report.Logged{Errors: map[string]int{"read_timeout": 9}, BodyErrors: map[string]int{"premature_close": 2},
			LastLine: "old", WhileProbePasses: true}
		found := find(tg.Key, lg)
		done()
		if found {
			if lg.Errors["connection_refused"] < 1 || len(lg.Errors) != 1 || len(lg.BodyErrors) != 0 || lg.LastLine != "" || lg.WhileProbePasses ||
				lg.Last.Location() != time.UTC || lg.Last.IsZero() {
				t.Errorf("logged = %+v, want connection_refused counted, at a UTC time", lg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lookup never found the server the log named")
		}
		time.Sleep(20 * time.Millisecond)
	}
	find, done := lookup()
	defer done()
	if lg := new(report.Logged); find(other, lg) {
		t.Errorf("logged for a server the log did not name: %+v", lg)
	}
}
