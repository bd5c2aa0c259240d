package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BinaryEnv names an environment variable holding a prebuilt exporter for
// the whole-binary tests to run instead of building one (the binary CI
// ships, for instance).
const BinaryEnv = "E2E_EXPORTER"

// Module is the exporter's module path.
const Module = "github.com/nginx-upstream-exporter/nginx_upstream_exporter"

// ModuleRoot returns the exporter module's directory, asked of the go
// command so that it is right from any package of the module and from
// modules that replace it with a local path (tools/bench).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go list -m %s: %w: %s", Module, err, ee.Stderr)
		}
		return "", fmt.Errorf("go list -m %s: %w", Module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m %s: no directory (not a local module)", Module)
	}
	return dir, nil
}

// GoBuild runs `go build [flags] -o out pkg` in dir, the module (or
// package directory) pkg is resolved from.
func GoBuild(dir, out, pkg string, flags ...string) error {
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, b)
	}
	return nil
}

// BuildExporter builds the exporter's main package into out; flags are
// more go build flags (-overlay, -ldflags, ...).
func BuildExporter(out string, flags ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	return GoBuild(root, out, ".", flags...)
}

// ExporterBinary returns $E2E_EXPORTER, or builds the exporter into dir.
// A test binary calls it once, from TestMain: one build serves every test.
func ExporterBinary(dir string) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p, nil
	}
	out := filepath.Join(dir, "nginx_upstream_exporter")
	if err := BuildExporter(out); err != nil {
		return "", err
	}
	return out, nil
}
