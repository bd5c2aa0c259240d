package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// dockerStage is one FROM … section of the Dockerfile.
type dockerStage struct {
	from, name string
	// instructions in order, continuation lines joined: "RUN …", "ARG …".
	instructions []string
}

// parseDockerfile splits the Dockerfile into stages. It knows the subset of
// the syntax the file uses: comments, backslash continuations, FROM … AS.
func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		stages  []dockerStage
		logical []string
		cur     strings.Builder
	)
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		fields := strings.Fields(l)
		if strings.EqualFold(fields[0], "FROM") {
			st := dockerStage{from: fields[1]}
			if len(fields) == 4 && strings.EqualFold(fields[2], "AS") {
				st.name = fields[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %s", l)
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, l)
	}
	return stages
}

func instructions(st dockerStage, keyword string) []string {
	var out []string
	for _, in := range st.instructions {
		if k, rest, ok := strings.Cut(in, " "); ok && strings.EqualFold(k, keyword) {
			out = append(out, strings.TrimSpace(rest))
		}
	}
	return out
}

func TestDockerfileShape(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(moduleRoot(t), "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("want a builder and a final stage, got %d stages", len(stages))
	}
	build, final := stages[0], stages[1]
	if !strings.HasPrefix(build.from, "golang:1.26") {
		t.Errorf("builder FROM %s, want golang:1.26", build.from)
	}
	if !slices.Contains([]string{"gcr.io/distroless/static-debian12:nonroot"}, final.from) && !strings.HasPrefix(final.from, "busybox") {
		t.Errorf("final stage FROM %s, want distroless static or busybox", final.from)
	}
	users := instructions(final, "USER")
	if len(users) != 1 || strings.HasPrefix(users[0], "root") || strings.HasPrefix(users[0], "0") {
		t.Errorf("final stage USER %v, want one non-root user", users)
	}
	if e := instructions(final, "EXPOSE"); !slices.Equal(e, []string{"10650"}) {
		t.Errorf("EXPOSE %v, want 10650", e)
	}
	if e := instructions(final, "ENTRYPOINT"); len(e) != 1 || !strings.Contains(e[0], "nginx_upstream_exporter") {
		t.Errorf("ENTRYPOINT %v", e)
	}
	copies := instructions(final, "COPY")
	if len(copies) != 1 || !strings.Contains(copies[0], "--from="+build.name) {
		t.Errorf("final stage should copy only the binary from %q: %v", build.name, copies)
	}
}

// goBuildRun returns the build stage's RUN command that calls go build,
// and the default of each ARG.
func goBuildRun(t *testing.T) (string, map[string]string) {
	t.Helper()
	stages := parseDockerfile(t, filepath.Join(moduleRoot(t), "Dockerfile"))
	args := map[string]string{}
	for _, a := range instructions(stages[0], "ARG") {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	var runs []string
	for _, r := range instructions(stages[0], "RUN") {
		if strings.Contains(r, "go build") {
			runs = append(runs, r)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("want one RUN with go build in the build stage, got %q", runs)
	}
	return runs[0], args
}

func TestDockerfileBuildsLikeMakefile(t *testing.T) {
	run, _ := goBuildRun(t)
	for _, want := range []string{"CGO_ENABLED=0 go build", "-trimpath", "-ldflags"} {
		if !strings.Contains(run, want) {
			t.Errorf("go build command lacks %q: %s", want, run)
		}
	}
	mk, err := os.ReadFile(filepath.Join(moduleRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	// The Makefile stamps $(PKG).Name=…; the Dockerfile spells PKG out.
	pkg := regexp.MustCompile(`(?m)^PKG\s*:=\s*(\S+)`).FindSubmatch(mk)
	ld := regexp.MustCompile(`(?m)^LDFLAGS\s*:=\s*(.*)$`).FindSubmatch(mk)
	if pkg == nil || ld == nil {
		t.Fatal("Makefile has no PKG or LDFLAGS")
	}
	names := func(s string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`-X (\S+?)\.(\w+)=`).FindAllStringSubmatch(s, -1) {
			out = append(out, strings.Replace(m[1], "$(PKG)", string(pkg[1]), 1)+"."+m[2])
		}
		slices.Sort(out)
		return out
	}
	if mkVars, dfVars := names(string(ld[1])), names(run); !slices.Equal(mkVars, dfVars) {
		t.Errorf("ldflags differ:\nMakefile:   %v\nDockerfile: %v", mkVars, dfVars)
	}
}

// TestDockerfileBuildStage runs the build stage's go build command as
// docker would (a shell, with the build args in the environment) into a
// temporary directory, and checks that the binary reports the stamped
// version. No Docker engine is needed.
func TestDockerfileBuildStage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	run, args := goBuildRun(t)
	out := t.TempDir()
	const dockerOut = "/out/"
	if strings.Count(run, dockerOut) != 1 {
		t.Fatalf("want one output path under %s in %s", dockerOut, run)
	}
	cmdline := strings.Replace(run, dockerOut, out+"/", 1)

	sh := exec.Command("/bin/sh", "-c", cmdline)
	sh.Dir = moduleRoot(t) // the build stage copies the module root to its WORKDIR
	env := os.Environ()
	env = append(env, "PATH="+filepath.Join(runtime.GOROOT(), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	for k, v := range args {
		env = append(env, k+"="+v)
	}
	env = append(env, "VERSION=9.8.7-dockertest", "REVISION=0123abcd", "BRANCH=docker-test")
	sh.Env = env
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}

	bin := filepath.Join(out, "nginx_upstream_exporter")
	b, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, b)
	}
	for _, want := range []string{"version 9.8.7-dockertest", "revision: 0123abcd", "branch: docker-test", "build user:       docker"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("--version lacks %q:\n%s", want, b)
		}
	}
	// -trimpath: no path of this machine in the binary.
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if wd := moduleRoot(t); strings.Contains(string(data), wd) {
		t.Errorf("binary contains the build directory %s: -trimpath not applied", wd)
	}
}

// moduleRoot is the repository root, where the Dockerfile and Makefile are.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
