package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseBudgets(t *testing.T) {
	good := "# comment\n\n./prober BenchmarkProbeTCP 200x 39 2655 # trailing\n./nginxconf BenchmarkLoad/one-file/memfs 3x 1 2\n"
	bs, err := parseBudgets(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].Name != "BenchmarkProbeTCP" || bs[0].Allocs != 39 || bs[0].Bytes != 2655 || bs[1].Benchtime != "3x" || bs[1].line != 3 {
		t.Errorf("parsed %+v", bs)
	}
	for name, text := range map[string]string{
		"empty":             "# nothing\n",
		"fields":            "./prober BenchmarkProbeTCP 200x 39\n",
		"duration":          "./prober BenchmarkProbeTCP 1s 39 2655\n",
		"not a benchmark":   "./prober TestX 200x 39 2655\n",
		"not a directory":   "prober BenchmarkProbeTCP 200x 39 2655\n",
		"negative":          "./prober BenchmarkProbeTCP 200x -1 2655\n",
		"not a number":      "./prober BenchmarkProbeTCP 200x 39 2k\n",
		"listed twice":      "./p BenchmarkA 1x 1 1\n./p BenchmarkA 1x 1 1\n",
		"zero iterations":   "./prober BenchmarkProbeTCP 0x 39 2655\n",
		"bytes not a count": "./prober BenchmarkProbeTCP 200x 39 1.5\n",
	} {
		if _, err := parseBudgets(text); err == nil {
			t.Errorf("%s: accepted %q", name, text)
		}
	}
}

func TestBenchRegexp(t *testing.T) {
	if got, want := benchRegexp("BenchmarkLoad/one-file/memfs"), "^BenchmarkLoad$/^one-file$/^memfs$"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := benchRegexp("BenchmarkA.B"), `^BenchmarkA\.B$`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseOutput(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkProbeTCPX-2   	     200	     60159 ns/op	    1 B/op	      1 allocs/op
BenchmarkProbeTCP-2   	     200	     60159 ns/op	    2929 B/op	      39 allocs/op
BenchmarkProbeTCP-2   	     200	     65784 ns/op	    2649 B/op	      41 allocs/op
BenchmarkTextWriter10k   	       5	  10728874 ns/op	  22876861 bytes/page	 8627761 B/op	   28055 allocs/op
PASS
`)
	m, err := parseOutput(out, "BenchmarkProbeTCP", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (measurement{MinAllocs: 39, MinBytes: 2649, MaxAllocs: 41, MaxBytes: 2929}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	m, err = parseOutput(out, "BenchmarkTextWriter10k", 1)
	if err != nil || m.MinAllocs != 28055 || m.MinBytes != 8627761 {
		t.Errorf("custom metric in the line: %+v, %v", m, err)
	}
	if _, err := parseOutput(out, "BenchmarkGone", 1); err == nil {
		t.Error("a benchmark that did not run was accepted")
	}
	if _, err := parseOutput(out, "BenchmarkProbeTCP", 3); err == nil {
		t.Error("missing runs were accepted")
	}
	if _, err := parseOutput([]byte("BenchmarkA-2 10 5 ns/op\n"), "BenchmarkA", 1); err == nil {
		t.Error("a line without -benchmem figures was accepted")
	}
}

func TestCheck(t *testing.T) {
	bs := []budget{
		{Package: "./p", Name: "BenchmarkA", Allocs: 10, Bytes: 1000},
		{Package: "./p", Name: "BenchmarkB", Allocs: 10, Bytes: 1000},
		{Package: "./p", Name: "BenchmarkC", Allocs: 10, Bytes: 1000},
	}
	ms := []measurement{
		{MinAllocs: 10, MinBytes: 1100}, // at the budget, bytes within 10 %
		{MinAllocs: 11, MinBytes: 900},  // one allocation over
		{MinAllocs: 9, MinBytes: 1101},  // bytes over the tolerance
	}
	var out bytes.Buffer
	fails := check(bs, ms, 0.10, &out)
	if len(fails) != 2 {
		t.Fatalf("failures %q", fails)
	}
	if !strings.Contains(fails[0], "BenchmarkB") || !strings.Contains(fails[0], "allocs/op 11 > budget 10") {
		t.Errorf("allocation failure does not name the benchmark and its numbers: %q", fails[0])
	}
	if !strings.Contains(fails[1], "BenchmarkC") || !strings.Contains(fails[1], "B/op 1101 > budget 1000") {
		t.Errorf("bytes failure does not name the benchmark and its numbers: %q", fails[1])
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("%d report lines, want 3:\n%s", n, out.String())
	}
}

func TestRewriteKeepsComments(t *testing.T) {
	text := "# head\n./p BenchmarkA 1x 1 1 # why\n\n./p BenchmarkB 2x 1 1\n"
	bs, err := parseBudgets(text)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rewrite(text, bs, []measurement{{MaxAllocs: 5, MaxBytes: 50}, {MaxAllocs: 7, MaxBytes: 70}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := parseBudgets(out)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Allocs != 5 || again[0].Bytes != 50 || again[1].Allocs != 7 || again[1].Benchtime != "2x" {
		t.Errorf("rewritten %+v", again)
	}
	if !strings.HasPrefix(out, "# head\n") || !strings.Contains(out, "# why") {
		t.Errorf("comments lost:\n%s", out)
	}
}

// TestRunRealBenchmark runs the command end to end on a benchmark that
// allocates exactly one kilobyte per iteration.
func TestRunRealBenchmark(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles and runs a benchmark")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	file := filepath.Join(t.TempDir(), "budgets.txt")
	for _, tc := range []struct {
		name, line string
		code       int
		stderr     string
	}{
		{"within", "./testdata/allocs BenchmarkKilobyte/one 50x 1 1024\n", 0, ""},
		{"bytes within tolerance", "./testdata/allocs BenchmarkKilobyte/one 50x 1 1000\n", 0, ""},
		{"allocs over", "./testdata/allocs BenchmarkKilobyte/one 50x 0 1024\n", 1,
			"FAIL ./testdata/allocs BenchmarkKilobyte/one: allocs/op 1 > budget 0"},
		{"bytes over", "./testdata/allocs BenchmarkKilobyte/one 50x 1 512\n", 1,
			"B/op 1024 > budget 512 + 10% = 563"},
		{"renamed", "./testdata/allocs BenchmarkMegabyte 50x 1 1024\n", 2, "did not run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.line), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"-budgets", file, "-count", "2", "-go", goCmd}, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}

	// -write records what was measured.
	if err := os.WriteFile(file, []byte("./testdata/allocs BenchmarkKilobyte/one 50x 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-budgets", file, "-count", "1", "-go", goCmd, "-write"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-write: exit %d: %s", code, stderr.String())
	}
	text, _ := os.ReadFile(file)
	bs, err := parseBudgets(string(text))
	if err != nil || bs[0].Allocs != 1 || bs[0].Bytes != 1024 {
		t.Errorf("-write wrote %q (%v)", text, err)
	}
}

// TestCommittedBudgetFile keeps the committed file parseable and pointing
// at benchmarks of this module.
func TestCommittedBudgetFile(t *testing.T) {
	text, err := os.ReadFile("alloc-budgets.txt")
	if err != nil {
		t.Fatal(err)
	}
	bs, err := parseBudgets(string(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		dir := filepath.Join("..", "..", b.Package)
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s %s: %v", b.Package, b.Name, err)
		}
	}
}
