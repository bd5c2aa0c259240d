package nginxconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs LoadContext and fails the test when it has not returned
// within d: the hang itself is the failure these tests look for. A Load
// that hangs leaks its goroutine; the test has failed by then.
func loadWithin(t *testing.T, d time.Duration, ctx context.Context, path string, opts LoadOptions) (*Config, error) {
	t.Helper()
	type result struct {
		cfg *Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := LoadContext(ctx, path, opts)
		done <- result{cfg, err}
	}()
	select {
	case r := <-done:
		return r.cfg, r.err
	case <-time.After(d):
		t.Fatalf("Load(%s) still running after %v", path, d)
		return nil, nil
	}
}

// allocated returns the bytes allocated while f runs (cumulative, so that
// a garbage collection in between cannot hide a spike).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// wantParseError checks that err is a *ParseError at pos ("file:line")
// whose message contains msg.
func wantParseError(t *testing.T, err error, pos, msg string) *ParseError {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	if got := fmt.Sprintf("%s:%d", pe.File, pe.Line); pos != "" && got != pos {
		t.Errorf("position = %s, want %s (%v)", got, pos, err)
	}
	if !strings.Contains(pe.Msg, msg) {
		t.Errorf("message %q does not contain %q", pe.Msg, msg)
	}
	return pe
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEventsRequired: nginx refuses a configuration without an events{}
// block, so a truncated or empty nginx.conf is a failed load, not an
// empty target set.
func TestEventsRequired(t *testing.T) {
	const main = "/etc/nginx/nginx.conf"
	tests := []struct {
		name  string
		files memFS
		want  string // exact error; "" means the load succeeds
	}{
		{"empty file", memFS{main: ""}, `nginxconf: /etc/nginx/nginx.conf:1: no "events" section in configuration`},
		{"comment only", memFS{main: "# truncated\n\n"}, `nginxconf: /etc/nginx/nginx.conf:3: no "events" section in configuration`},
		{"http without events", memFS{main: "http {\n}\n"}, `nginxconf: /etc/nginx/nginx.conf:3: no "events" section in configuration`},
		{"duplicate events", memFS{main: "events {}\nevents {}\n"}, `nginxconf: /etc/nginx/nginx.conf:2: "events" directive is duplicate`},
		{"events in an included file", memFS{main: "include ev.conf;\nhttp {}\n", "/etc/nginx/ev.conf": "events {}\n"}, ""},
		{"events only inside http is no events", memFS{main: "http {\n events {}\n}\n"}, `nginxconf: /etc/nginx/nginx.conf:4: no "events" section in configuration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(main, LoadOptions{FS: tt.files, PageSize: 4096})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded with %d targets, want %q", len(cfg.Servers), tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %v is not a *ParseError", err)
			}
		})
	}
}

// TestNginxAgrees runs the real nginx -t on the cases where Load refuses
// what nginx refuses, and checks that both fail with the same message at
// the same place (nginx names no place for a missing events block).
func TestNginxAgrees(t *testing.T) {
	nginx := "/usr/sbin/nginx"
	if _, err := os.Stat(nginx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx is required in CI: %v", err)
		}
		t.Skipf("%s not installed (apt-get install nginx-light): %v", nginx, err)
	}
	cases := map[string]string{
		"empty.conf":     "",
		"noevents.conf":  "http {\n}\n",
		"comment.conf":   "# cut here\n",
		"duplicate.conf": "events {}\n\nevents {}\n",
		"truncated.conf": "events {}\nhttp {\n server {\n  location / {\n",
		"brace.conf":     "events {}\nhttp {\n}\n}\n",
		"included.conf":  "http {\n}\ninclude ev.inc;\n",
		"ok.conf":        "events {}\nhttp {\n server {\n  location / { proxy_pass http://127.0.0.1:1; }\n }\n}\n",
	}
	dir := t.TempDir()
	files := map[string]string{"ev.inc": "events {}\n"}
	for name, content := range cases {
		files[name] = content
	}
	writeFiles(t, dir, files)
	emerg := regexp.MustCompile(`\[emerg\] [0-9#]+: (.*?)(?: in (\S+):([0-9]+))?\n`)
	for name := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			cmd := exec.Command(nginx, "-t", "-q", "-e", "stderr", "-p", dir, "-c", path,
				"-g", "pid "+filepath.Join(dir, "nginx.pid")+";")
			out, nginxErr := cmd.CombinedOutput()
			_, err := Load(path, LoadOptions{PageSize: 4096})
			if (nginxErr == nil) != (err == nil) {
				t.Fatalf("nginx -t: %v (%s); Load: %v", nginxErr, out, err)
			}
			if err == nil {
				return
			}
			m := emerg.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no [emerg] line in nginx's output:\n%s", out)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if pe.Msg != string(m[1]) {
				t.Errorf("message = %q, nginx says %q", pe.Msg, m[1])
			}
			if len(m[2]) > 0 {
				if got, want := fmt.Sprintf("%s:%d", pe.File, pe.Line), string(m[2])+":"+string(m[3]); got != want {
					t.Errorf("position = %s, nginx says %s", got, want)
				}
			} else if pe.File != path {
				t.Errorf("file = %s, want the main file %s", pe.File, path)
			}
		})
	}
}

// TestTruncateThenWrite: editors and deploy tools truncate nginx.conf and
// then write it, possibly in several writes. A load in between must fail,
// never succeed with fewer targets. events{} comes last, as it may in any
// configuration, so that no prefix of the file is valid by luck.
func TestTruncateThenWrite(t *testing.T) {
	var body strings.Builder
	body.WriteString("http {\n")
	const upstreams = 50
	for i := range upstreams {
		fmt.Fprintf(&body, " upstream u%d { server 127.0.0.1:%d; }\n server { location /%d { proxy_pass http://u%d; } }\n", i, 1000+i, i, i)
	}
	body.WriteString("}\nevents {}\n")
	content := []byte(body.String())
	path := filepath.Join(t.TempDir(), "nginx.conf")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, stage string, wantOK bool) {
		t.Helper()
		cfg, err := Load(path, LoadOptions{PageSize: 4096})
		switch {
		case wantOK && err != nil:
			t.Fatalf("%s: %v", stage, err)
		case !wantOK && err == nil:
			t.Fatalf("%s: load succeeded with %d targets", stage, len(cfg.Servers))
		case wantOK && len(cfg.Servers) != upstreams:
			t.Fatalf("%s: %d targets, want %d", stage, len(cfg.Servers), upstreams)
		}
	}
	// Step by step: every state the writer goes through.
	check(t, "complete", true)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "truncated", false)
	half := len(content) / 2
	if _, err := f.Write(content[:half]); err != nil {
		t.Fatal(err)
	}
	check(t, "half written", false)
	if _, err := f.Write(content[half:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	check(t, "rewritten", true)

	// And racing: a writer rewriting in three writes, a loader loading.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			for _, part := range [][]byte{content[:half/2], content[half/2 : half], content[half:]} {
				if _, err := f.Write(part); err != nil {
					t.Error(err)
				}
			}
			f.Close()
		}
	}()
	var ok, failed int
	for ctx.Err() == nil {
		cfg, err := Load(path, LoadOptions{PageSize: 4096})
		if err != nil {
			failed++
			continue
		}
		ok++
		if len(cfg.Servers) != upstreams {
			t.Errorf("load during a rewrite succeeded with %d targets, want %d", len(cfg.Servers), upstreams)
			break
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d complete loads, %d refused partial files", ok, failed)
}

// TestNonRegularIncludes: files that never end (/dev/zero), never start (a
// FIFO without writer) or are not files (a socket, the terminal) are
// refused at the include that names them, at once and without reading.
func TestNonRegularIncludes(t *testing.T) {
	dir := t.TempDir()
	fifoDir := filepath.Join(dir, "fifo.d")
	if err := os.Mkdir(fifoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, fifoDir, map[string]string{"a.conf": "# first\n"})
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "b.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A short path: unix socket paths must stay under 108 bytes.
	sockDir, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "s.conf")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	tests := []struct {
		name, include, kind string
	}{
		{"dev zero", "/dev/zero", "character device"},
		{"fifo in a glob", "fifo.d/*.conf", "named pipe"},
		{"socket", sock, "socket"},
		{"directory", fifoDir, "directory"},
	}
	if st, err := os.Stat("/dev/stdin"); err == nil && !st.Mode().IsRegular() {
		tests = append(tests, struct{ name, include, kind string }{"dev stdin", "/dev/stdin", fileKind(st.Mode())})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			main := filepath.Join(dir, "nginx.conf")
			writeFiles(t, dir, map[string]string{"nginx.conf": "events {}\nhttp {\n include " + tt.include + ";\n}\n"})
			var err error
			alloc := allocated(func() {
				_, err = loadWithin(t, 5*time.Second, context.Background(), main, LoadOptions{PageSize: 4096})
			})
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("err = %v, want ErrNotRegular", err)
			}
			wantParseError(t, err, main+":3", tt.kind+", not a regular file")
			if alloc > 4<<20 {
				t.Errorf("refusing %s allocated %d bytes", tt.include, alloc)
			}
		})
	}
	t.Run("main file", func(t *testing.T) {
		_, err := loadWithin(t, 5*time.Second, context.Background(), filepath.Join(fifoDir, "b.conf"), LoadOptions{})
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("err = %v, want ErrNotRegular", err)
		}
	})
}

// TestFileSizeLimit: a file larger than MaxFileBytes is refused from its
// size, before it is read; one that claims less is still read at most
// MaxFileBytes+1 bytes.
func TestFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"nginx.conf": "events {}\nhttp {\n include big.conf;\n}\n"})
	big, err := os.Create(filepath.Join(dir, "big.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 1 GiB that costs nothing on disk.
	if err := big.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	big.Close()
	main := filepath.Join(dir, "nginx.conf")
	var lerr error
	alloc := allocated(func() { _, lerr = Load(main, LoadOptions{PageSize: 4096}) })
	if !errors.Is(lerr, ErrLimitExceeded) {
		t.Fatalf("err = %v, want ErrLimitExceeded", lerr)
	}
	wantParseError(t, lerr, main+":3", "per-file limit")
	if alloc > 4<<20 {
		t.Errorf("refusing a 1 GiB file allocated %d bytes", alloc)
	}

	// In memory, through an FS: the same limit and message.
	fsys := memFS{"/n.conf": "events {}\ninclude a.conf;\n", "/a.conf": strings.Repeat("#", 101)}
	_, err = Load("/n.conf", LoadOptions{FS: fsys, MaxFileBytes: 100})
	wantParseError(t, err, "/n.conf:2", `"/a.conf" is larger than the per-file limit of 100 bytes`)
	if _, err := Load("/n.conf", LoadOptions{FS: fsys, MaxFileBytes: 101}); err != nil {
		t.Errorf("a file of exactly MaxFileBytes: %v", err)
	}
	// The main file too.
	if _, err := Load("/n.conf", LoadOptions{FS: fsys, MaxFileBytes: 10}); !errors.Is(err, ErrLimitExceeded) {
		t.Errorf("main file over the limit: err = %v", err)
	}
}

// fanOut is a tree where nginx.conf includes l1/*.conf, and each of the
// width files of level i includes every file of level i+1: width^depth
// inclusions of the deepest level, from width*depth files.
func fanOut(width, depth int) memFS {
	m := memFS{"/etc/nginx/nginx.conf": "events {}\nhttp {\n include l1/*.conf;\n}\n"}
	for lv := 1; lv <= depth; lv++ {
		for i := range width {
			content := fmt.Sprintf("# level %d file %d\n", lv, i)
			if lv < depth {
				content += fmt.Sprintf("include l%d/*.conf;\n", lv+1)
			} else {
				content += fmt.Sprintf("server { location /%d { proxy_pass http://127.0.0.1:%d; } }\n", i, 1000+i)
			}
			m[fmt.Sprintf("/etc/nginx/l%d/%d.conf", lv, i)] = content
		}
	}
	return m
}

// TestIncludeFanOut: nginx parses a file included twice twice, so the
// inclusions and bytes that count are those of the fan-out, not of the
// distinct files: 2^28 inclusions of 28 small files are refused at once.
func TestIncludeFanOut(t *testing.T) {
	t.Run("2^28 inclusions", func(t *testing.T) {
		fsys := fanOut(16, 7)
		var err error
		start := time.Now()
		alloc := allocated(func() {
			_, err = loadWithin(t, 10*time.Second, context.Background(), "/etc/nginx/nginx.conf", LoadOptions{FS: fsys})
		})
		if !errors.Is(err, ErrLimitExceeded) {
			t.Fatalf("err = %v, want ErrLimitExceeded", err)
		}
		wantParseError(t, err, "", fmt.Sprintf("more than %d file inclusions", DefaultMaxInclusions))
		// Proportional to the inclusions allowed, not to 2^28.
		if alloc > 256<<20 {
			t.Errorf("refusing the fan-out allocated %d MiB", alloc>>20)
		}
		t.Logf("refused in %v, %d MiB allocated", time.Since(start), alloc>>20)
	})

	// Exact accounting on a small fan-out: 1 main + 4 + 16 + 64.
	fsys := fanOut(4, 3)
	const inclusions = 1 + 4 + 16 + 64
	var bytes int64
	for name, content := range fsys {
		lv := 0
		fmt.Sscanf(name, "/etc/nginx/l%d/", &lv)
		times := map[int]int64{0: 1, 1: 1, 2: 4, 3: 16}[lv]
		bytes += times * int64(len(content))
	}
	t.Run("inclusions counted with repeats", func(t *testing.T) {
		if _, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, MaxInclusions: inclusions}); err != nil {
			t.Fatalf("at the limit: %v", err)
		}
		_, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, MaxInclusions: inclusions - 1})
		if !errors.Is(err, ErrLimitExceeded) {
			t.Fatalf("one over the limit: err = %v", err)
		}
		wantParseError(t, err, "", fmt.Sprintf("more than %d file inclusions", inclusions-1))
	})
	t.Run("bytes counted with repeats", func(t *testing.T) {
		if _, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, MaxTotalBytes: bytes}); err != nil {
			t.Fatalf("at the limit (%d bytes): %v", bytes, err)
		}
		_, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, MaxTotalBytes: bytes - 1})
		if !errors.Is(err, ErrLimitExceeded) {
			t.Fatalf("one byte over the limit: err = %v", err)
		}
		wantParseError(t, err, "", fmt.Sprintf("more than %d bytes of configuration", bytes-1))
	})
	t.Run("distinct files", func(t *testing.T) {
		if _, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, MaxFiles: 13}); err != nil {
			t.Fatalf("at the limit: %v", err)
		}
		_, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, MaxFiles: 12})
		if !errors.Is(err, ErrLimitExceeded) {
			t.Fatalf("one over the limit: err = %v", err)
		}
		wantParseError(t, err, "", "at most 12 distinct files")
	})
	t.Run("depth", func(t *testing.T) {
		if _, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, MaxIncludeDepth: 3}); err != nil {
			t.Fatalf("at the limit: %v", err)
		}
		_, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, MaxIncludeDepth: 2})
		if !errors.Is(err, ErrLimitExceeded) {
			t.Fatalf("one over the limit: err = %v", err)
		}
		wantParseError(t, err, "/etc/nginx/l2/0.conf:2", "includes nested more than 2 deep")
	})
	t.Run("depth of a cached file", func(t *testing.T) {
		// deep.conf is first included from the main file (depth 1, its
		// include at 2), then again from a.conf (depth 2, include at 3).
		fsys := memFS{
			"/n.conf":    "events {}\ninclude deep.conf;\ninclude a.conf;\n",
			"/a.conf":    "include deep.conf;\n",
			"/deep.conf": "include leaf.conf;\n",
			"/leaf.conf": "# leaf\n",
		}
		if _, err := Load("/n.conf", LoadOptions{FS: fsys, MaxIncludeDepth: 3}); err != nil {
			t.Fatalf("depth 3 allowed: %v", err)
		}
		_, err := Load("/n.conf", LoadOptions{FS: fsys, MaxIncludeDepth: 2})
		wantParseError(t, err, "/a.conf:1", "includes nested more than 2 deep")
	})
}

// countingFS counts reads and runs a hook before each.
type countingFS struct {
	memFS
	reads  atomic.Int64
	before func(n int64)
}

func (c *countingFS) ReadFile(name string) ([]byte, error) {
	c.before(c.reads.Add(1))
	return c.memFS.ReadFile(name)
}

// TestLoadCancelled: a load stops soon after its context is cancelled
// (SIGTERM during a large reload), between files and within a large file.
func TestLoadCancelled(t *testing.T) {
	t.Run("between files", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fsys := &countingFS{memFS: fanOut(10, 3), before: func(n int64) {
			if n == 5 {
				cancel()
			}
		}}
		_, err := loadWithin(t, 5*time.Second, ctx, "/etc/nginx/nginx.conf", LoadOptions{FS: fsys})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := fsys.reads.Load(); n > 5 {
			t.Errorf("%d files read after cancelling at the 5th", n)
		}
	})
	// The parser reads the file through the context: cancelled, it
	// stops at its first read. What the parse allocated tells whether it
	// stopped there: a full parse allocates many times the file's size.
	t.Run("while parsing a large file", func(t *testing.T) {
		data := []byte(upstreamTree(2000))
		full := allocated(func() {
			if _, err := parseFile(context.Background(), "/etc/nginx/nginx.conf", data); err != nil {
				t.Fatal(err)
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var err error
		stopped := allocated(func() { _, err = parseFile(ctx, "/etc/nginx/nginx.conf", data) })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if stopped > full/10 {
			t.Errorf("the cancelled parse allocated %d KiB, a full one %d KiB: it went on", stopped>>10, full>>10)
		}
	})
	// Cancelled at each check the expansion and the walk make, counted
	// rather than timed: a check at least every 256 directives in each,
	// and the load returns at the check that sees the cancellation.
	t.Run("within a large tree", func(t *testing.T) {
		const blocks = 2000
		// upstreamBlock writes 8 directives; events and http are 2 more.
		// The walk visits 6 of each 8: an upstream's server lines are
		// read with their block.
		visited := map[string]int{"expand": 8*blocks + 2, "walk": 6 * blocks}
		fsys := memFS{"/etc/nginx/nginx.conf": upstreamTree(blocks)}
		all := &checkpointCtx{Context: context.Background()}
		if _, err := loadWithin(t, 10*time.Second, all, "/etc/nginx/nginx.conf", LoadOptions{FS: fsys}); err != nil {
			t.Fatal(err)
		}
		last := map[string]int{}
		count := map[string]int{}
		for i, phase := range all.phases() {
			last[phase] = i + 1
			count[phase]++
		}
		for _, phase := range []string{"expand", "walk"} {
			if count[phase] < visited[phase]/256 {
				t.Errorf("the %s checked the context %d times for %d directives, want one check per 256 at least", phase, count[phase], visited[phase])
			}
			ctx := &checkpointCtx{Context: context.Background(), at: last[phase]}
			_, err := loadWithin(t, 10*time.Second, ctx, "/etc/nginx/nginx.conf", LoadOptions{FS: fsys})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled at the %s's last check (%d of %d): err = %v, want context.Canceled", phase, last[phase], len(all.phases()), err)
			}
			if n := len(ctx.phases()); n != last[phase] {
				t.Errorf("cancelled at check %d (the %s's last), the load checked %d times", last[phase], phase, n)
			}
		}
	})
}

// upstreamTree is a main file of n upstream blocks, each with a server
// that proxies to it.
func upstreamTree(n int) string {
	var b strings.Builder
	b.WriteString("events {}\nhttp {\n")
	for i := range n {
		upstreamBlock(&b, i)
	}
	b.WriteString("}\n")
	return b.String()
}

// checkpointCtx is a context cancelled at its at-th Err call (never when
// at is 0) that records which part of the load made each call: a test
// cancels a load at any one of its checks with no timer to race.
type checkpointCtx struct {
	context.Context
	at int

	mu     sync.Mutex
	calls  []string
	done   chan struct{}
	closed bool
}

func (c *checkpointCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *checkpointCtx) Err() error {
	phase := "expand"
	if pc, _, _, ok := runtime.Caller(1); ok && strings.Contains(runtime.FuncForPC(pc).Name(), "(*walker)") {
		phase = "walk"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, phase)
	if c.at == 0 || len(c.calls) < c.at {
		return nil
	}
	if !c.closed {
		if c.done == nil {
			c.done = make(chan struct{})
		}
		close(c.done)
		c.closed = true
	}
	return context.Canceled
}

// phases lists the part of the load ("expand" or "walk") that made each
// check, in order.
func (c *checkpointCtx) phases() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// TestLimitsInErrors: every limit error names the limit it hit.
func TestLimitErrorMessages(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("events {}\n")
	for range 10 {
		b.WriteString("include a.conf;\n")
	}
	fsys := memFS{"/n.conf": b.String(), "/a.conf": "# x\n"}
	_, err := Load("/n.conf", LoadOptions{FS: fsys, MaxInclusions: 5})
	if err == nil || !strings.HasPrefix(err.Error(), "nginxconf: /n.conf:6: more than 5 file inclusions") {
		t.Errorf("err = %v", err)
	}
}

// TestDirectiveLimit: directives are counted (as ';' and '{') before a
// file is parsed, so a file of minimal directives is refused before the
// parser spends ~100 bytes of memory per byte on it.
func TestDirectiveLimit(t *testing.T) {
	fsys := memFS{
		"/n.conf":    "events {}\nhttp {\n include a.conf;\n include a.conf;\n}\n",
		"/a.conf":    "server { location / { proxy_pass http://127.0.0.1:1; } }\n",
		"/tiny.conf": "events {}\n" + strings.Repeat("a;", 2*DefaultMaxDirectives),
	}
	// 2 in n.conf, 4 per inclusion of a.conf.
	if _, err := Load("/n.conf", LoadOptions{FS: fsys, MaxDirectives: 10}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := Load("/n.conf", LoadOptions{FS: fsys, MaxDirectives: 9})
	wantParseError(t, err, "/n.conf:4", "more than 9 directives")
	if !errors.Is(err, ErrLimitExceeded) {
		t.Errorf("err = %v, want ErrLimitExceeded", err)
	}
	alloc := allocated(func() { _, err = Load("/tiny.conf", LoadOptions{FS: fsys}) })
	wantParseError(t, err, "/tiny.conf:0", fmt.Sprintf("more than %d directives", DefaultMaxDirectives))
	if alloc > 16<<20 {
		t.Errorf("refusing %d directives allocated %d MiB", 2*DefaultMaxDirectives, alloc>>20)
	}
}
