package loadstate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// deepChanges is changes() as it was when the whole model was kept: the
// reference the fingerprints must agree with.
func deepChanges(loaded, disk *nginxconf.Config) []string {
	type key struct{ upstream, server, proto string }
	index := func(c *nginxconf.Config) map[key]*nginxconf.UpstreamServer {
		m := make(map[key]*nginxconf.UpstreamServer, len(c.Servers))
		for i := range c.Servers {
			s := &c.Servers[i]
			m[key{s.Upstream, s.Server, s.Kind().Label()}] = s
		}
		return m
	}
	before, after := index(loaded), index(disk)
	var out []string
	for k, s := range after {
		old, ok := before[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("adds server %s to upstream %s (%s)", k.server, k.upstream, k.proto))
		case !reflect.DeepEqual(old.Params, s.Params) || !reflect.DeepEqual(old.Settings, s.Settings):
			out = append(out, fmt.Sprintf("changes the settings of server %s in upstream %s (%s)", k.server, k.upstream, k.proto))
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, fmt.Sprintf("removes server %s from upstream %s (%s)", k.server, k.upstream, k.proto))
		}
	}
	sort.Strings(out)
	return out
}

// TestChangesAgreeWithModel: on random edits of a configuration (servers
// added, removed, moved, re-parameterised, TLS turned on, a nil list
// made empty, duplicates), the fingerprints report what comparing the
// whole models reported.
func TestChangesAgreeWithModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := func() nginxconf.Config {
		var c nginxconf.Config
		for i := range 40 {
			c.Servers = append(c.Servers, nginxconf.UpstreamServer{
				Upstream: fmt.Sprintf("u%d", i%7), Server: fmt.Sprintf("127.0.0.%d:%d", i%5+1, 3000+i%3),
				Protocol: protocol.HTTP, Params: nginxconf.ServerParams{Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second},
			})
		}
		return c
	}
	edits := []func(c *nginxconf.Config, i int){
		func(c *nginxconf.Config, i int) { c.Servers[i].Params.Weight++ },
		func(c *nginxconf.Config, i int) { c.Servers[i].Params.Service = "x" },
		func(c *nginxconf.Config, i int) { c.Servers[i].Settings.SSL.Enabled = true },
		func(c *nginxconf.Config, i int) { c.Servers[i].Settings.SSL.Protocols = []string{} },
		func(c *nginxconf.Config, i int) { c.Servers[i].Settings.SSL.Protocols = []string{"TLSv1.3"} },
		func(c *nginxconf.Config, i int) { c.Servers[i].Settings.ReadTimeout = time.Second },
		func(c *nginxconf.Config, i int) { c.Servers[i].Settings.HostHeader = "h" },
		func(c *nginxconf.Config, i int) { c.Servers[i].Upstream += "x" },
		func(c *nginxconf.Config, i int) { c.Servers[i].Server = "127.0.1.1:1" },
		// Servers kept as text rather than packed, and implicit
		// upstreams named after their server.
		func(c *nginxconf.Config, i int) { c.Servers[i].Server = "backend.test:3000" },
		func(c *nginxconf.Config, i int) { c.Servers[i].Server = "[::1]:3001" },
		func(c *nginxconf.Config, i int) { c.Servers[i].Server = "127.0.0.1" },
		func(c *nginxconf.Config, i int) { c.Servers[i].Server = "unix:/run/app.sock" },
		func(c *nginxconf.Config, i int) { c.Servers[i].Upstream = c.Servers[i].Server },
		func(c *nginxconf.Config, i int) { c.Servers[i].Upstream = "127.0.0.1:3000" },
		func(c *nginxconf.Config, i int) { c.Servers[i].Protocol = protocol.FastCGI },
		func(c *nginxconf.Config, i int) { c.Servers = slices.Delete(c.Servers, i, i+1) },
		func(c *nginxconf.Config, i int) { c.Servers = append(c.Servers, c.Servers[i]) },
		func(c *nginxconf.Config, i int) {
			d := c.Servers[i]
			d.Params.Backup = true
			c.Servers = append(c.Servers, d)
		},
		// Fields the comparison ignores.
		func(c *nginxconf.Config, i int) { c.Servers[i].Sources = []string{"a:1"} },
		func(c *nginxconf.Config, i int) { c.Servers[i].Implicit = true },
	}
	for round := range 300 {
		loaded, disk := base(), base()
		for range rng.IntN(4) {
			edits[rng.IntN(len(edits))](&loaded, rng.IntN(len(loaded.Servers)))
		}
		for range rng.IntN(6) {
			edits[rng.IntN(len(edits))](&disk, rng.IntN(len(disk.Servers)))
		}
		lp, dp := fingerprint(&loaded), fingerprint(&disk)
		want, got := deepChanges(&loaded, &disk), changes(&lp, &dp)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: changes\n got %q\nwant %q", round, got, want)
		}
	}
}

// TestSettingsHashEveryField: a change of any field of the parameters or
// settings, nested ones included, changes the hash.
func TestSettingsHashEveryField(t *testing.T) {
	h := func(s *nginxconf.UpstreamServer) [2]uint32 {
		p := fingerprint(&nginxconf.Config{Servers: []nginxconf.UpstreamServer{*s}})
		return p.entries[0].settings
	}
	var zero nginxconf.UpstreamServer
	base := h(&zero)
	var walk func(v reflect.Value, path string)
	n := 0
	walk = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			f, name := v.Field(i), path+"."+v.Type().Field(i).Name
			if f.Kind() == reflect.Struct {
				walk(f, name)
				continue
			}
			old := reflect.New(f.Type()).Elem()
			old.Set(f)
			switch f.Kind() {
			case reflect.Bool:
				f.SetBool(true)
			case reflect.Int, reflect.Int64:
				f.SetInt(1)
			case reflect.String:
				f.SetString("x")
			case reflect.Slice:
				f.Set(reflect.MakeSlice(f.Type(), 0, 0)) // empty, not nil
			default:
				t.Fatalf("%s: kind %s not covered by this test", name, f.Kind())
			}
			if got := h(&zero); got == base {
				t.Errorf("%s changed, hash did not", name)
			}
			f.Set(old)
			n++
		}
	}
	walk(reflect.ValueOf(&zero.Params).Elem(), "Params")
	walk(reflect.ValueOf(&zero.Settings).Elem(), "Settings")
	if n < 20 {
		t.Fatalf("only %d fields walked", n)
	}
}

// memTree writes 10,000 upstream servers as a large site has them: 1,000
// upstream{} blocks of 10 servers in 100 included files. Every named-th
// block has servers of one static hostname (names: 10 servers a name),
// the others IP literals; named 0 means none. It returns the path of
// the main file and the names' records.
func memTree(tb testing.TB, named int) (string, map[string][]string) {
	tb.Helper()
	dir := tb.TempDir()
	var main strings.Builder
	main.WriteString("events {}\nhttp {\n")
	records := map[string][]string{}
	for f := range 100 {
		var inc strings.Builder
		for u := range 10 {
			n := f*10 + u
			fmt.Fprintf(&inc, "upstream u%d {\n", n)
			for p := range 10 {
				if named > 0 && n%named == 0 {
					host := fmt.Sprintf("h%d.test", n)
					records[host] = []string{fmt.Sprintf("127.1.%d.%d", n>>8, n&255)}
					fmt.Fprintf(&inc, "    server %s:%d max_fails=2;\n", host, 3000+p)
				} else {
					fmt.Fprintf(&inc, "    server 127.%d.%d.%d:%d weight=2;\n", 2+n>>8, n&255, p+1, 3000+p)
				}
			}
			inc.WriteString("}\n")
		}
		name := filepath.Join(dir, fmt.Sprintf("u%d.conf", f))
		if err := os.WriteFile(name, []byte(inc.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&main, "include %s;\n", name)
	}
	main.WriteString("server {\n listen 8080;\n")
	for n := range 1000 {
		fmt.Fprintf(&main, " location /%d { proxy_pass http://u%d; proxy_read_timeout 30s; }\n", n, n)
	}
	main.WriteString("}\n}\n")
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return conf, records
}

// TestHeap10k: what the Tracker keeps of a configuration of 10,000
// servers, seen loaded by nginx and loaded again from disk, is at most
// 35 bytes per IP literal server and 500 per static hostname server
// (names, positions, resolutions, the evidence index, the Result): the
// parse model is released with the load.
func TestHeap10k(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	for _, tc := range []struct {
		name              string
		named             int
		literals, statics int
	}{
		{"literals", 0, 10000, 0},
		{"one in ten named", 10, 9000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, records := memTree(t, tc.named)
			load := func() *discovery.Loaded {
				cfg, err := nginxconf.Load(conf, nginxconf.LoadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(cfg.Servers) != 10000 {
					t.Fatalf("%d servers", len(cfg.Servers))
				}
				return &discovery.Loaded{Nginx: cfg}
			}

			// For reference: the model itself, which the Tracker used
			// to keep.
			before := testutil.LiveHeap()
			model := load()
			modelBytes := int64(testutil.LiveHeap()) - int64(before)
			runtime.KeepAlive(model)
			model = nil

			started := time.Now()
			nginx := &fakeNginx{}
			nginx.load(started.Add(time.Second))
			before = testutil.LiveHeap()
			tr := New(Options{Finder: nginx, Resolver: mapResolver(records), Started: started})
			tr.Observe(load(), nil)
			tr.Tick(context.Background())
			// A second load of the same tree shares the summary of
			// the first.
			tr.Observe(load(), nil)
			tr.Tick(context.Background())
			kept := int64(testutil.LiveHeap()) - int64(before)
			r := tr.Result()
			if !r.Witnessed || len(r.Servers) != tc.statics || len(r.Pending) != 0 {
				t.Fatalf("witnessed %v, %d static servers, pending %v", r.Witnessed, len(r.Servers), r.Pending)
			}
			runtime.KeepAlive(tr)
			t.Logf("model %d B (%.0f B/server); tracker keeps %d B (%.1f B/server)", modelBytes, float64(modelBytes)/10000, kept, float64(kept)/10000)
			// Measured 28.6 B/server of literals only, 76.6 with one in
			// ten named (44.1 and 92.0 with the upstream names as
			// strings and the server names as text).
			if limit := int64(35*tc.literals + 500*tc.statics); kept > limit {
				t.Errorf("tracker keeps %d B, more than %d", kept, limit)
			}
		})
	}
}
