package prober

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrCannotCheck wraps failures to inspect a path for the worker user when
// the exporter itself lacks the rights to look (e.g. running unprivileged
// next to another user's socket directory).
var ErrCannotCheck = errors.New("cannot check path for the nginx worker user")

// LookupCredentials resolves nginx's `user` directive the way nginx does:
// the group defaults to the user's name, and supplementary groups come from
// the group database (initgroups). An empty name means nginx's default,
// "nobody".
func LookupCredentials(userName, groupName string) (*Credentials, error) {
	if userName == "" {
		userName = "nobody"
	}
	u, err := user.Lookup(userName)
	if err != nil {
		return nil, fmt.Errorf("looking up nginx worker user %q: %w", userName, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of %q: %w", userName, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of %q: %w", userName, err)
	}
	if groupName == "" {
		groupName = userName
	}
	// nginx insists on the named group; when it does not exist nginx
	// would not start, so the user's primary group is the best stand-in.
	if g, err := user.LookupGroup(groupName); err == nil {
		if v, err := strconv.ParseUint(g.Gid, 10, 32); err == nil {
			gid = v
		}
	}
	c := &Credentials{User: userName, UID: uint32(uid), GID: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if v, err := strconv.ParseUint(id, 10, 32); err == nil {
				c.Groups = append(c.Groups, uint32(v))
			}
		}
	}
	return c, nil
}

// CheckWorkerAccess reports the error connect(2) would return to the worker
// user for a unix socket at path: EACCES when a directory on the way is not
// searchable or the socket not writable for that user, ENOENT when a
// component is missing. The exporter usually runs as root and would
// connect where nginx cannot, so the kernel's check is repeated here from
// the file modes. A nil return means the kernel would let the worker try.
func CheckWorkerAccess(path string, c *Credentials) error {
	if c.UID == 0 {
		return nil
	}
	if !filepath.IsAbs(path) {
		// Relative socket paths resolve against nginx's working
		// directory, unknowable here; leave the verdict to connect().
		return nil
	}
	// Walk every directory from the root as path resolution does.
	dir := "/"
	parts := strings.Split(filepath.Clean(path), "/")
	for i, part := range parts {
		if part == "" {
			continue
		}
		st, err := os.Stat(dir)
		if err != nil {
			return statErr(dir, err)
		}
		if !allowed(st, c, 1) { // search (x) on the directory
			return &os.PathError{Op: "connect", Path: path, Err: syscall.EACCES}
		}
		next := filepath.Join(dir, part)
		if i == len(parts)-1 {
			st, err := os.Stat(next)
			if err != nil {
				return statErr(next, err)
			}
			if !allowed(st, c, 2) { // write (w) on the socket
				return &os.PathError{Op: "connect", Path: path, Err: syscall.EACCES}
			}
			return nil
		}
		dir = next
	}
	return nil
}

func statErr(path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return &os.PathError{Op: "connect", Path: path, Err: syscall.ENOENT}
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %s: %w", ErrCannotCheck, path, err)
	}
	return err
}

// allowed applies the kernel's owner/group/other rule for one permission
// bit (1 = x, 2 = w, 4 = r).
func allowed(st os.FileInfo, c *Credentials, bit uint32) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := uint32(st.Mode().Perm())
	switch {
	case sys.Uid == c.UID:
		return mode&(bit<<6) != 0
	case inGroup(sys.Gid, c):
		return mode&(bit<<3) != 0
	default:
		return mode&bit != 0
	}
}

func inGroup(gid uint32, c *Credentials) bool {
	if gid == c.GID {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}
