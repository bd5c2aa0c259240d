// Command budgets checks the allocations of chosen Go benchmarks against a
// committed budget file, so that CI catches a regression in memory per
// probe, per scrape or per reload without depending on timing: allocs/op
// and B/op of a benchmark run for a fixed number of iterations
// (-benchtime=Nx) are the same from run to run up to the noise of pools
// emptied by the garbage collector, which can only add allocations.
//
// Each benchmark runs -count times (default 3) and the smallest figures are
// compared: a real regression raises every run, noise does not. allocs/op
// must not exceed the budget; B/op may exceed it by -bytes-tolerance
// (default 10 %, the spread buffers grown to different sizes give).
//
//	go run ./tools/budgets                 # check, as make test does
//	go run ./tools/budgets -write          # rewrite the figures after an intended change
//
// The budget file has one benchmark a line:
//
//	package  benchmark  benchtime  allocs/op  B/op
//
// where package is a directory relative to the module root (./prober),
// benchmark the full name with sub-benchmarks (BenchmarkLoad/one-file/memfs)
// and benchtime an iteration count (200x). '#' starts a comment.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("budgets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("budgets", "tools/budgets/alloc-budgets.txt", "the budget file")
	count := fs.Int("count", 3, "runs of each benchmark; the smallest figures count")
	tol := fs.Float64("bytes-tolerance", 0.10, "fraction by which B/op may exceed its budget")
	write := fs.Bool("write", false, "rewrite the budget file with the largest figures measured instead of checking")
	goCmd := fs.String("go", "go", "the go command")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	text, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	budgets, err := parseBudgets(string(text))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *file, err)
		return 2
	}
	dir, err := os.MkdirTemp("", "budgets")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	r := runner{goCmd: *goCmd, dir: dir, count: *count, bins: map[string]string{}}
	measured := make([]measurement, len(budgets))
	for i, b := range budgets {
		m, err := r.measure(b)
		if err != nil {
			fmt.Fprintf(stderr, "%s %s: %v\n", b.Package, b.Name, err)
			return 2
		}
		measured[i] = m
	}
	if *write {
		out, err := rewrite(string(text), budgets, measured)
		if err == nil {
			err = os.WriteFile(*file, []byte(out), 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		fmt.Fprintf(stdout, "wrote %d budgets to %s\n", len(budgets), *file)
		return 0
	}
	failures := check(budgets, measured, *tol, stdout)
	for _, f := range failures {
		fmt.Fprintln(stderr, "FAIL", f)
	}
	if len(failures) > 0 {
		fmt.Fprintf(stderr, "%d of %d allocation budgets exceeded (%s); if the change is intended, run: go run ./tools/budgets -write\n",
			len(failures), len(budgets), *file)
		return 1
	}
	return 0
}

// budget is one line of the budget file.
type budget struct {
	Package   string
	Name      string
	Benchtime string
	Allocs    int64
	Bytes     int64
	line      int
}

// measurement is what one benchmark allocated: the smallest figures over
// the runs (what the check compares) and the largest (what -write records).
type measurement struct {
	MinAllocs, MinBytes int64
	MaxAllocs, MaxBytes int64
}

var benchtimeRE = regexp.MustCompile(`^[1-9][0-9]*x$`)

func parseBudgets(text string) ([]budget, error) {
	var out []budget
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("line %d: want 5 fields (package benchmark benchtime allocs/op B/op), got %d", i+1, len(f))
		}
		b := budget{Package: f[0], Name: f[1], Benchtime: f[2], line: i}
		if !strings.HasPrefix(b.Package, "./") {
			return nil, fmt.Errorf("line %d: package %q is not a ./ directory", i+1, b.Package)
		}
		if !strings.HasPrefix(b.Name, "Benchmark") {
			return nil, fmt.Errorf("line %d: %q is not a benchmark name", i+1, b.Name)
		}
		if !benchtimeRE.MatchString(b.Benchtime) {
			return nil, fmt.Errorf("line %d: benchtime %q is not an iteration count such as 100x: only those give deterministic allocation figures", i+1, b.Benchtime)
		}
		var err error
		if b.Allocs, err = strconv.ParseInt(f[3], 10, 64); err != nil || b.Allocs < 0 {
			return nil, fmt.Errorf("line %d: allocs/op %q: not a count", i+1, f[3])
		}
		if b.Bytes, err = strconv.ParseInt(f[4], 10, 64); err != nil || b.Bytes < 0 {
			return nil, fmt.Errorf("line %d: B/op %q: not a count", i+1, f[4])
		}
		key := b.Package + " " + b.Name
		if seen[key] {
			return nil, fmt.Errorf("line %d: %s listed twice", i+1, key)
		}
		seen[key] = true
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no budgets")
	}
	return out, nil
}

// benchRegexp selects exactly the named benchmark and sub-benchmark:
// go test splits -bench at '/' and matches each level on its own.
func benchRegexp(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

type runner struct {
	goCmd string
	dir   string
	count int
	bins  map[string]string // package → compiled test binary
}

// binary compiles a package's tests once; every benchmark of the package
// then runs from the same binary.
func (r *runner) binary(pkg string) (string, error) {
	if bin, ok := r.bins[pkg]; ok {
		return bin, nil
	}
	bin := filepath.Join(r.dir, fmt.Sprintf("pkg%d.test", len(r.bins)))
	cmd := exec.Command(r.goCmd, "test", "-c", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c: %w\n%s", err, out)
	}
	r.bins[pkg] = bin
	return bin, nil
}

func (r *runner) measure(b budget) (measurement, error) {
	bin, err := r.binary(b.Package)
	if err != nil {
		return measurement{}, err
	}
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", benchRegexp(b.Name),
		"-test.benchmem", "-test.benchtime", b.Benchtime, "-test.count", strconv.Itoa(r.count))
	// Benchmarks read testdata relative to their package, as under go test.
	cmd.Dir = b.Package
	out, err := cmd.CombinedOutput()
	if err != nil {
		return measurement{}, fmt.Errorf("%w\n%s", err, out)
	}
	return parseOutput(out, b.Name, r.count)
}

// parseOutput reads the result lines of one benchmark from go test's output:
//
//	BenchmarkProbeTCP-2   200   60159 ns/op   2929 B/op   39 allocs/op
func parseOutput(out []byte, name string, want int) (measurement, error) {
	m := measurement{MinAllocs: -1, MinBytes: -1}
	runs := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || trimProcs(f[0]) != name {
			continue
		}
		allocs, bytes := int64(-1), int64(-1)
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "allocs/op":
				allocs = int64(v)
			case "B/op":
				bytes = int64(v)
			}
		}
		if allocs < 0 || bytes < 0 {
			return m, fmt.Errorf("no allocs/op or B/op in %q (is -benchmem set?)", sc.Text())
		}
		runs++
		if m.MinAllocs < 0 || allocs < m.MinAllocs {
			m.MinAllocs = allocs
		}
		if m.MinBytes < 0 || bytes < m.MinBytes {
			m.MinBytes = bytes
		}
		m.MaxAllocs = max(m.MaxAllocs, allocs)
		m.MaxBytes = max(m.MaxBytes, bytes)
	}
	if runs == 0 {
		return m, fmt.Errorf("benchmark did not run (renamed or removed?); output:\n%s", out)
	}
	if runs != want {
		return m, fmt.Errorf("%d results, want %d; output:\n%s", runs, want, out)
	}
	return m, nil
}

// trimProcs removes the -GOMAXPROCS suffix go test adds to a name.
func trimProcs(s string) string {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return s
	}
	if _, err := strconv.Atoi(s[i+1:]); err != nil {
		return s
	}
	return s[:i]
}

// check prints one line per benchmark and returns one message per budget
// exceeded, naming the benchmark and its numbers.
func check(budgets []budget, ms []measurement, tol float64, w io.Writer) []string {
	var fails []string
	for i, b := range budgets {
		m := ms[i]
		limit := int64(float64(b.Bytes) * (1 + tol))
		status := "ok"
		var why []string
		if m.MinAllocs > b.Allocs {
			why = append(why, fmt.Sprintf("allocs/op %d > budget %d", m.MinAllocs, b.Allocs))
		}
		if m.MinBytes > limit {
			why = append(why, fmt.Sprintf("B/op %d > budget %d + %.0f%% = %d", m.MinBytes, b.Bytes, tol*100, limit))
		}
		if len(why) > 0 {
			status = "OVER"
			fails = append(fails, fmt.Sprintf("%s %s: %s", b.Package, b.Name, strings.Join(why, ", ")))
		}
		fmt.Fprintf(w, "%-4s %-12s %-40s %9d allocs/op (budget %9d) %11d B/op (budget %11d)\n",
			status, b.Package, b.Name, m.MinAllocs, b.Allocs, m.MinBytes, b.Bytes)
	}
	return fails
}

// rewrite replaces the figures of each budget line, keeping comments and
// the order of the file.
func rewrite(text string, budgets []budget, ms []measurement) (string, error) {
	lines := strings.Split(text, "\n")
	for i, b := range budgets {
		if b.line >= len(lines) {
			return "", fmt.Errorf("line %d out of range", b.line+1)
		}
		comment := ""
		if j := strings.IndexByte(lines[b.line], '#'); j >= 0 {
			comment = "  " + lines[b.line][j:]
		}
		lines[b.line] = fmt.Sprintf("%-12s %-40s %-6s %9d %11d%s", b.Package, b.Name, b.Benchtime, ms[i].MaxAllocs, ms[i].MaxBytes, comment)
	}
	return strings.Join(lines, "\n"), nil
}
