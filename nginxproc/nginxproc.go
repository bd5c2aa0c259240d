// Package nginxproc finds the running nginx through /proc: the master
// process named by the pid file, and its worker processes grouped in
// generations. nginx starts a new generation of workers at every start
// and reload (ngx_master_process_cycle: ngx_start_worker_processes after
// SIGHUP), and renames the workers of the previous one "worker process is
// shutting down" (ngx_worker_process_cycle) until their last connection
// ends. The start time of the current generation is therefore nginx's
// last (re)load: the one moment at which it read its configuration and
// resolved its static upstream names.
//
// It reads only /proc (one directory scan per call) and the pid file,
// never signals or execs anything.
package nginxproc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Titles nginx gives its processes (ngx_setproctitle).
const (
	masterTitle       = "nginx: master process"
	workerTitle       = "nginx: worker process"
	shuttingDownTitle = "nginx: worker process is shutting down"
)

// Sentinel errors say why no master was found; Find wraps them.
var (
	// ErrNoPIDFile: the pid file does not exist or is empty (nginx is
	// not running, or writes its pid elsewhere).
	ErrNoPIDFile = errors.New("no nginx pid file")
	// ErrNotRunning: the pid file names a process that does not exist
	// or is not an nginx master (a stale pid file).
	ErrNotRunning = errors.New("the pid file names no running nginx master")
	// ErrNoAccess: the exporter cannot see nginx's processes (another
	// PID namespace, /proc mounted with hidepid, or the pid file is not
	// readable to it). Unknown, not down.
	ErrNoAccess = errors.New("cannot see nginx's processes")
)

// Process is one nginx process.
type Process struct {
	PID int
	// Start is when the process started, to the clock tick.
	Start time.Time
}

// Snapshot is the running nginx at one moment.
type Snapshot struct {
	Master Process
	// Current are the workers of the generation nginx runs now;
	// Old those still finishing the connections of an earlier one.
	Current, Old []Process
}

// Generation identifies the current generation of workers: the start of
// its oldest worker. It is zero when there is no current worker (nginx
// between a crash and the respawn, or a master-only setup).
func (s *Snapshot) Generation() time.Time {
	var g time.Time
	for _, w := range s.Current {
		if g.IsZero() || w.Start.Before(g) {
			g = w.Start
		}
	}
	return g
}

// LastLoad is when nginx last read its configuration: the start of the
// current generation, else the master's start.
func (s *Snapshot) LastLoad() time.Time {
	if g := s.Generation(); !g.IsZero() {
		return g
	}
	return s.Master.Start
}

// Finder finds nginx under one /proc.
type Finder struct {
	// Proc is the proc filesystem's mount point; "" means /proc.
	Proc string
	// PIDFile is nginx's pid file.
	PIDFile string
	// ConfigFile, when set, disambiguates masters seen through a PID
	// namespace (see Find): the one whose command line names it wins.
	ConfigFile string

	bootTime time.Time
}

func (f *Finder) proc(parts ...string) string {
	root := f.Proc
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(append([]string{root}, parts...)...)
}

// Find reads the pid file and /proc. The pid file holds the master's pid
// in nginx's own PID namespace: when nginx runs in a container and the
// exporter outside it, that number names another process here, so a
// master whose innermost namespace pid (NSpid in /proc/PID/status) is the
// pid file's number is accepted too, when exactly one such master exists
// (or exactly one names ConfigFile on its command line).
func (f *Finder) Find() (*Snapshot, error) {
	pid, err := f.readPIDFile()
	if err != nil {
		return nil, err
	}
	if err := f.loadBootTime(); err != nil {
		return nil, err
	}
	procs, visible, err := f.scan()
	if err != nil {
		return nil, err
	}
	master, ok := procs[pid]
	if !ok || !master.isMaster() {
		master, ok = f.masterByNSPID(procs, pid)
	}
	if !ok {
		if _, err := os.ReadFile(f.proc(strconv.Itoa(pid), "stat")); errors.Is(err, fs.ErrPermission) {
			// hidepid=1 (noaccess) shows the directories but hides
			// their content.
			return nil, fmt.Errorf("%w: /proc/%d is not readable (/proc mounted with hidepid)", ErrNoAccess, pid)
		}
		if visible <= 1 || f.hidePID() {
			// hidepid=2 (invisible), or another PID namespace: only the
			// exporter's own processes are visible, so absence proves
			// nothing.
			return nil, fmt.Errorf("%w: only the exporter's own processes are visible in %s (another PID namespace, or hidepid)", ErrNoAccess, f.proc())
		}
		return nil, fmt.Errorf("%w: pid %d from %s", ErrNotRunning, pid, f.PIDFile)
	}
	s := &Snapshot{Master: Process{PID: master.pid, Start: master.start}}
	for _, p := range procs {
		if p.ppid != master.pid {
			continue
		}
		switch {
		case strings.HasPrefix(p.title, shuttingDownTitle):
			s.Old = append(s.Old, Process{PID: p.pid, Start: p.start})
		case strings.HasPrefix(p.title, workerTitle), p.isMaster():
			// A worker keeps the master's title from fork until
			// ngx_worker_process_init renames it, which on a loaded
			// machine can take a while: it already belongs to the
			// new generation.
			s.Current = append(s.Current, Process{PID: p.pid, Start: p.start})
		}
	}
	return s, nil
}

func (f *Finder) readPIDFile() (int, error) {
	b, err := os.ReadFile(f.PIDFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("%w: %s", ErrNoPIDFile, f.PIDFile)
	case errors.Is(err, fs.ErrPermission):
		return 0, fmt.Errorf("%w: %w", ErrNoAccess, err)
	case err != nil:
		return 0, fmt.Errorf("reading nginx's pid file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, fmt.Errorf("%w: %s is empty", ErrNoPIDFile, f.PIDFile)
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%w: %s holds %q", ErrNotRunning, f.PIDFile, s)
	}
	return pid, nil
}

// loadBootTime finds the boot time once: process start times in
// /proc/PID/stat are clock ticks since boot. /proc/stat's btime is
// rounded to the second, which would date a process up to a second off;
// the real /proc's boot time is taken from CLOCK_BOOTTIME instead, the
// clock those ticks count (Linux 4.17 and later).
func (f *Finder) loadBootTime() error {
	if !f.bootTime.IsZero() {
		return nil
	}
	if f.Proc == "" || f.Proc == "/proc" {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err == nil {
			f.bootTime = time.Now().Add(-time.Duration(ts.Nano()))
			return nil
		}
	}
	b, err := os.ReadFile(f.proc("stat"))
	if err != nil {
		return fmt.Errorf("reading boot time: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return fmt.Errorf("parsing btime: %w", err)
			}
			f.bootTime = time.Unix(sec, 0)
			return nil
		}
	}
	return errors.New("no btime in /proc/stat")
}

// hidePID reports whether the proc filesystem is mounted with hidepid
// (other users' processes hidden), from /proc/self/mountinfo.
func (f *Finder) hidePID() bool {
	b, err := os.ReadFile(f.proc("self", "mountinfo"))
	if err != nil {
		return false
	}
	root := f.Proc
	if root == "" {
		root = "/proc"
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || fields[4] != root {
			continue
		}
		for _, opt := range strings.Split(fields[len(fields)-1], ",") {
			if strings.HasPrefix(opt, "hidepid=") && opt != "hidepid=0" && opt != "hidepid=off" {
				return true
			}
		}
	}
	return false
}

// proc is what Find needs of one process.
type proc struct {
	pid, ppid int
	start     time.Time
	title     string
	cmdline   string
}

func (p *proc) isMaster() bool { return strings.HasPrefix(p.title, masterTitle) }

// scan reads every process that looks like nginx: one pass over /proc.
// Processes that vanish or cannot be read mid-scan are skipped. visible
// counts every readable process, so that a /proc that hides other users'
// processes (only the exporter's own are readable) is told from one that
// has no nginx.
func (f *Finder) scan() (nginx map[int]*proc, visible int, err error) {
	entries, err := os.ReadDir(f.proc())
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrNoAccess, err)
	}
	out := map[int]*proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := f.read(pid)
		if err != nil {
			continue
		}
		visible++
		if strings.HasPrefix(p.title, "nginx: ") {
			out[pid] = p
		}
	}
	return out, visible, nil
}

// read reads one process's stat (ppid, start) and command line (title).
func (f *Finder) read(pid int) (*proc, error) {
	stat, err := os.ReadFile(f.proc(strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	p, err := parseStat(stat, f.bootTime)
	if err != nil {
		return nil, err
	}
	p.pid = pid
	cmd, err := os.ReadFile(f.proc(strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, err
	}
	// nginx overwrites argv with its title; what follows the title's NUL
	// (if anything) is the rest of the original environment area.
	title, _, _ := bytes.Cut(cmd, []byte{0})
	p.title = string(title)
	p.cmdline = string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
	return p, nil
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 100

// parseStat reads the ppid (field 4) and starttime (field 22) of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ')'.
func parseStat(b []byte, boot time.Time) (*proc, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state).
	if len(f) < 20 {
		return nil, errors.New("short stat")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, fmt.Errorf("stat ppid: %w", err)
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("stat starttime: %w", err)
	}
	start := boot.Add(time.Duration(ticks) * time.Second / clockTick)
	return &proc{ppid: ppid, start: start}, nil
}

// masterByNSPID finds the master whose pid in its own namespace is pid.
func (f *Finder) masterByNSPID(procs map[int]*proc, pid int) (*proc, bool) {
	var found []*proc
	for _, p := range procs {
		if !p.isMaster() {
			continue
		}
		b, err := os.ReadFile(f.proc(strconv.Itoa(p.pid), "status"))
		if err != nil {
			continue
		}
		if nspid(b) == pid {
			found = append(found, p)
		}
	}
	if len(found) > 1 && f.ConfigFile != "" {
		var named []*proc
		for _, p := range found {
			if strings.Contains(p.cmdline, f.ConfigFile) {
				named = append(named, p)
			}
		}
		found = named
	}
	if len(found) != 1 {
		return nil, false
	}
	return found[0], true
}

// nspid returns the innermost pid of the NSpid line of /proc/PID/status.
func nspid(status []byte) int {
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0
			}
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

// DefaultPIDFile is where Debian's nginx writes its pid without a `pid`
// directive (--pid-path of its build).
const DefaultPIDFile = "/run/nginx.pid"

// PIDFilePath is the pid file nginx writes: flag when set, else the `pid`
// directive (relative to nginx's -p prefix, as ngx_conf_full_name does
// for it), else DefaultPIDFile.
func PIDFilePath(flag, directive, prefix string) string {
	switch {
	case flag != "":
		return flag
	case directive == "":
		return DefaultPIDFile
	case filepath.IsAbs(directive) || prefix == "":
		return directive
	}
	return filepath.Join(prefix, directive)
}
