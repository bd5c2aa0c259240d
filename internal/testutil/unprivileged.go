package testutil

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Nobody returns the credential of the user "nobody", for tests that run
// a program without privileges. It skips the test unless it runs as root
// (only root may drop to another user) and the system has that user.
func Nobody(tb testing.TB) syscall.Credential {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to drop to another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		tb.Skip("no user nobody")
	}
	uid, err := strconv.ParseUint(nobody.Uid, 10, 32)
	if err != nil {
		tb.Fatalf("uid of nobody: %v", err)
	}
	gid, err := strconv.ParseUint(nobody.Gid, 10, 32)
	if err != nil {
		tb.Fatalf("gid of nobody: %v", err)
	}
	return syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// RunAs makes cmd run as cred's user and group with exactly groups as
// its supplementary groups: none unless named, so that root's groups do
// not leak into the unprivileged run.
func RunAs(cmd *exec.Cmd, cred syscall.Credential, groups ...uint32) {
	cred.Groups = append([]uint32{}, groups...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &cred}
}

// PublicCopy copies the executable at from into a new short temporary
// directory every user may enter (mode 0755), removed when the test
// ends, and returns the directory and the copy's path. A test binary or
// a built exporter usually lives in a directory private to root, where
// an unprivileged user could not run it.
func PublicCopy(tb testing.TB, from, name string) (dir, bin string) {
	tb.Helper()
	dir = ShortDir(tb)
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	bin = filepath.Join(dir, name)
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return dir, bin
}
