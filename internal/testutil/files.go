package testutil

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"testing"
)

// ShortDir is a temporary directory with a short path, removed when the
// test ends: unix socket paths must stay under 108 bytes, and
// t.TempDir's can be longer.
func ShortDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "nue")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// WriteFile writes content to dir/name (mode 0600) and returns the path.
func WriteFile(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// WriteNginxConf writes an nginx.conf around httpBlock into a new
// temporary directory. Its worker user is the test's own, so unix socket
// permissions are judged for a user that can reach them.
func WriteNginxConf(tb testing.TB, httpBlock string) string {
	tb.Helper()
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	return WriteFile(tb, tb.TempDir(), "nginx.conf", fmt.Sprintf("user %s;\nevents {}\nhttp {\n%s\n}\n", u.Username, httpBlock))
}
