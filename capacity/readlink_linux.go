package capacity

import "syscall"

// readlinkInto reads a symbolic link into buf without allocating: the
// /proc pass reads one link per open descriptor on the host.
func readlinkInto(path string, buf []byte) (int, error) {
	for {
		n, err := syscall.Readlink(path, buf)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}
