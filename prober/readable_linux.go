package prober

import (
	"syscall"
	"unsafe"
)

// pollfd is struct pollfd of poll(2).
type pollfd struct {
	fd      int32
	events  int16
	revents int16
}

const (
	pollIn    = 0x1
	pollRDHup = 0x2000
)

// readable reports whether fd has bytes, end of stream, a hang-up or an
// error pending (ppoll with a zero timeout: it never blocks). When in
// doubt it says yes: the Read that follows then simply blocks as usual.
func readable(fd uintptr) bool {
	p := pollfd{fd: int32(fd), events: pollIn | pollRDHup}
	var ts syscall.Timespec
	n, _, errno := syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1,
		uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return errno != 0 || n != 0 || p.revents != 0
}
