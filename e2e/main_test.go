package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

var (
	// baseDir holds every scenario's directory. It is world-searchable
	// so that nginx's workers (nobody) reach the sockets inside.
	baseDir string

	nginxBinary  = "nginx"
	phpFPMBinary = "php-fpm8.2"

	// exporterBinary is built once from the repository root, or taken
	// from E2E_EXPORTER (testutil.BinaryEnv); exporterErr says why there
	// is none.
	exporterBinary string
	exporterErr    error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	var err error
	baseDir, err = os.MkdirTemp("", "nue2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv("E2E_KEEP") == "" {
		defer os.RemoveAll(baseDir)
	} else {
		defer fmt.Fprintf(os.Stderr, "E2E_KEEP: scenario directories kept in %s\n", baseDir)
	}
	if err := os.Chmod(baseDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		nginxBinary = p
	} else if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		nginxBinary = "/usr/sbin/nginx"
	}
	for _, name := range []string{"php-fpm", "php-fpm8.2", "/usr/sbin/php-fpm8.2"} {
		if p, err := exec.LookPath(name); err == nil {
			phpFPMBinary = p
			break
		}
	}
	if os.Geteuid() == 0 {
		removeStaleNamespaces()
	}
	exporterBinary, exporterErr = testutil.ExporterBinary(baseDir)
	return m.Run()
}

// requireNginx skips (or in CI fails) when Debian's nginx is missing.
func requireNginx(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(nginxBinary); err != nil {
		skipOrFail(t, "nginx not installed (Debian package nginx-light): %v", err)
	}
}

// requireExporter skips (or in CI fails) when the exporter binary could
// not be built.
func requireExporter(t *testing.T) {
	t.Helper()
	if exporterErr != nil {
		skipOrFail(t, "no exporter binary: %v", exporterErr)
	}
}
