package capacity

import (
	"syscall"
	"unsafe"
)

// readlinkInto reads a symbolic link into buf: the /proc pass reads one
// link per open descriptor on the host.
func readlinkInto(path string, buf []byte) (int, error) {
	for {
		n, err := syscall.Readlink(path, buf)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

// cPath is a path with its terminating NUL, built on the stack: the
// checks of every refresh (a link per owner, a stat per socket) then
// allocate nothing, where a string path costs a copy per call.
type cPath struct {
	b [256]byte
	n int
}

// set makes p hold path; ok is false when it does not fit (the caller
// then takes the allocating path).
func (p *cPath) set(path string) bool {
	if len(path) >= len(p.b) {
		return false
	}
	p.n = copy(p.b[:], path)
	p.b[p.n] = 0
	return true
}

func (p *cPath) appendString(s string) bool {
	if p.n+len(s) >= len(p.b) {
		return false
	}
	p.n += copy(p.b[p.n:], s)
	p.b[p.n] = 0
	return true
}

func (p *cPath) appendUint(v uint64) bool {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	if p.n+len(d)-i >= len(p.b) {
		return false
	}
	p.n += copy(p.b[p.n:], d[i:])
	p.b[p.n] = 0
	return true
}

// readlink reads the link at p into buf.
func (p *cPath) readlink(buf []byte) (int, error) {
	cwd := atFDCWD
	for {
		r, _, errno := syscall.Syscall6(syscall.SYS_READLINKAT, uintptr(cwd), uintptr(unsafe.Pointer(&p.b[0])),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}

// stat stats the file at p, following links.
func (p *cPath) stat(st *syscall.Stat_t) error {
	cwd := atFDCWD
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_NEWFSTATAT, uintptr(cwd), uintptr(unsafe.Pointer(&p.b[0])),
			uintptr(unsafe.Pointer(st)), 0, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return errno
	}
}

// atFDCWD is AT_FDCWD: paths relative to the working directory.
const atFDCWD = -100
