package capacity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/cgroupfs"
)

// The process behind a listening socket: found by the socket's inode in
// /proc/<pid>/fd (what `ss -p` and lsof do), in one bounded pass over
// /proc per refresh, and only when a socket's cached owner no longer
// holds it. Pids never become labels; they are only the way to the
// process's start time, command line and cgroup.

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's starttime: the
// kernel reports 100 on every architecture whatever its internal HZ.
const clockTicks = 100

// maxScanFDs bounds one pass: a host with more open descriptors than this
// is read in part, and the owners not reached are unknown.
const maxScanFDs = 1 << 20

// Process is the owner of a listening socket.
type Process struct {
	PID int
	// Start is when the process started, from its starttime in
	// /proc/<pid>/stat and the boot time.
	Start      time.Time
	startTicks uint64
	// Cmdline is its command line with NULs as spaces (php-fpm rewrites
	// its own: "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)").
	Cmdline string
	// Cgroup is the memory cgroup it belongs to, "" when unknown.
	Cgroup cgroupRef
}

// same reports the same process: a pid reused by another process has
// another start time.
func (p *Process) same(o *Process) bool {
	return p.PID == o.PID && p.startTicks == o.startTicks
}

// procReader reads processes under root (/proc).
type procReader struct {
	root  string
	boot  time.Time
	cache map[uint32]fdRef // socket inode → a descriptor of its owner
	mem   cgroupfs.Mounts
}

// fdRef is one descriptor of a process (pids and descriptors fit 32
// bits: the cache holds one per socket).
type fdRef struct {
	pid, fd int32
}

func newProcReader(root string) (*procReader, error) {
	b, err := readBounded(filepath.Join(root, "stat"), 64<<10)
	if err != nil {
		return nil, err
	}
	boot, err := parseBootTime(b)
	if err != nil {
		return nil, err
	}
	mounts, _ := cgroupfs.ReadMounts(filepath.Join(root, "self", "mountinfo"))
	return &procReader{root: root, boot: boot, cache: map[uint32]fdRef{}, mem: mounts}, nil
}

func parseBootTime(b []byte) (time.Time, error) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			s, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("btime in /proc/stat: %w", err)
			}
			return time.Unix(s, 0), nil
		}
	}
	return time.Time{}, errors.New("no btime in /proc/stat")
}

// scanStats says how complete an owner search was.
type scanStats struct {
	// Scanned is true when a full pass over /proc ran.
	Scanned bool
	// Unreadable counts processes whose descriptors could not be listed
	// (another user's, without CAP_SYS_PTRACE / CAP_DAC_READ_SEARCH):
	// a socket not found while some were unreadable has an unknown
	// owner, not none.
	Unreadable int
	// FDs counts the descriptors read.
	FDs int
}

// owners finds the owner of each socket inode in want. A socket held by
// several processes (a pre-forking server's master and its workers) is
// owned by the one that started first (see preferOwner): the master,
// which outlives its workers, so that worker churn is not a restart.
//
// The owners are left in the cache: owner returns them. The cache is the
// result, not a copy of it: 10,000 sockets would cost another map.
func (p *procReader) owners(want map[uint32]struct{}) scanStats {
	var st scanStats
	missing := false
	for ino := range want {
		ref, ok := p.cache[ino]
		if !ok || !p.holds(ref, ino) {
			missing = true
			break
		}
	}
	if !missing {
		p.trimCache(want)
		return st
	}
	st.Scanned = true
	// Every owner is found again: none of the cached ones is known to
	// hold (an owner that is not found is unknown, not stale).
	clear(p.cache)
	found := p.cache
	starts := map[int]uint64{}
	start := func(pid int) uint64 {
		s, ok := starts[pid]
		if !ok {
			if pr, err := p.stat(pid); err == nil {
				s = pr.startTicks
			} else {
				s = ^uint64(0)
			}
			starts[pid] = s
		}
		return s
	}
	d, err := os.Open(p.root)
	if err != nil {
		st.Unreadable++
		return st
	}
	defer d.Close()
	var link [64]byte
	for st.FDs < maxScanFDs {
		ents, err := d.ReadDir(256)
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || !e.IsDir() {
				continue
			}
			fdDir := filepath.Join(p.root, e.Name(), "fd")
			fds, err := readDirNames(fdDir)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					st.Unreadable++
				}
				continue
			}
			for _, name := range fds {
				st.FDs++
				n, err := readlinkInto(filepath.Join(fdDir, name), link[:])
				if err != nil {
					continue
				}
				ino, ok := socketInode(link[:n])
				if !ok {
					continue
				}
				if _, ok := want[ino]; !ok {
					continue
				}
				fd, _ := strconv.Atoi(name)
				ref := fdRef{pid: int32(pid), fd: int32(fd)}
				if old, ok := found[ino]; ok && !preferOwner(int(old.pid), pid, start) {
					continue
				}
				found[ino] = ref
			}
		}
		if err != nil {
			break // io.EOF or an unreadable /proc: stop either way
		}
	}
	return st
}

// owner returns the owner of a socket inode of the last owners call's
// want.
func (p *procReader) owner(ino uint32) (fdRef, bool) {
	ref, ok := p.cache[ino]
	return ref, ok
}

func (p *procReader) trimCache(want map[uint32]struct{}) {
	if len(p.cache) <= 2*len(want)+16 {
		return
	}
	for ino := range p.cache {
		if _, ok := want[ino]; !ok {
			delete(p.cache, ino)
		}
	}
}

// preferOwner reports whether pid rather than old owns a socket both
// hold: the one started first, except the init process, which holds the
// sockets it activates (systemd socket units) for the whole life of the
// service, so that a restart of the service behind it still counts.
func preferOwner(old, pid int, start func(int) uint64) bool {
	if old == 1 || pid == 1 {
		return old == 1
	}
	so, sn := start(old), start(pid)
	return sn < so || (sn == so && pid < old)
}

// holds checks that ref still is a descriptor of socket ino.
func (p *procReader) holds(ref fdRef, ino uint32) bool {
	var link [64]byte
	var path cPath
	var n int
	var err error
	if path.set(p.root) && path.appendString("/") && path.appendUint(uint64(ref.pid)) && path.appendString("/fd/") && path.appendUint(uint64(ref.fd)) {
		n, err = path.readlink(link[:])
	} else {
		n, err = readlinkInto(filepath.Join(p.root, strconv.Itoa(int(ref.pid)), "fd", strconv.Itoa(int(ref.fd))), link[:])
	}
	if err != nil {
		return false
	}
	got, ok := socketInode(link[:n])
	return ok && got == ino
}

// socketInode parses "socket:[12345]".
func socketInode(b []byte) (uint32, bool) {
	v, ok := bytes.CutPrefix(b, []byte("socket:["))
	if !ok || len(v) < 2 || v[len(v)-1] != ']' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(v[:len(v)-1]), 10, 32)
	return uint32(n), err == nil
}

// process reads what the exporter needs of pid.
func (p *procReader) process(pid int) (*Process, error) {
	pr, err := p.stat(pid)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(p.root, strconv.Itoa(pid))
	if b, err := readBounded(filepath.Join(dir, "cmdline"), 4<<10); err == nil {
		b = bytes.TrimRight(b, "\x00 ")
		pr.Cmdline = string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
	}
	if b, err := readBounded(filepath.Join(dir, "cgroup"), 16<<10); err == nil {
		pr.Cgroup = oomRef(p.mem, b)
	}
	return pr, nil
}

// stat reads the start time of pid from /proc/<pid>/stat.
func (p *procReader) stat(pid int) (*Process, error) {
	b, err := readBounded(filepath.Join(p.root, strconv.Itoa(pid), "stat"), 4<<10)
	if err != nil {
		return nil, err
	}
	// The command name in parentheses may hold spaces and parentheses:
	// the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := bytes.Fields(b[i+1:])
	// starttime is field 22 of stat(5); fields[0] is field 3 (state).
	if len(fields) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	ticks, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("/proc/%d/stat starttime: %w", pid, err)
	}
	start := p.boot.Add(time.Duration(ticks) * (time.Second / clockTicks))
	return &Process{PID: pid, Start: start, startTicks: ticks}, nil
}

// readBounded reads at most limit bytes of a file; /proc files report no
// size, and a hostile or huge one must not cost more than that.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
