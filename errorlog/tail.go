package errorlog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/fswatch"
)

// readChunk is the read buffer: memory per Reader, whatever the rate.
const readChunk = 64 << 10

// maxDraining bounds the rotated-away files kept open per log.
const maxDraining = 4

// sigLen is how many bytes before the read offset are remembered to
// notice a file truncated and refilled past the offset between two looks
// (copytruncate under load).
const sigLen = 64

// tailFile is one log file followed by name.
type tailFile struct {
	path string
	// real is path with symlinks resolved, when it differs: writes to
	// the target are reported in the target's directory.
	real string
	// fromEnd: the next open starts at the end (the file existed when
	// the Reader started or the path was added): history is never
	// replayed. A file that appears later is new and read from 0.
	fromEnd bool

	f        *os.File
	dev, ino uint64
	off      int64
	sig      []byte
	st       lineState

	// draining are files rotated away (renamed or deleted) that nginx
	// may still write until it reopens its logs.
	draining []*drainFile

	state   FileState
	lastErr string
	logged  bool
}

type drainFile struct {
	f        *os.File
	off      int64
	st       lineState
	lastData time.Time
}

// Run follows the logs until ctx is done: inotify on their directories
// wakes it, a slow poll covers what inotify misses. A quiet log costs
// nothing between wake-ups.
func (r *Reader) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		r.opts.Logger.Warn("cannot watch error log directories; checking them every poll interval only", "interval", r.opts.PollInterval, "err", err)
		w = nil
	} else {
		defer w.Close()
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	buf := make([]byte, readChunk)
	files := map[string]*tailFile{}
	var watched *fswatch.Dirs
	if w != nil {
		watched = fswatch.New(w)
	}
	defer func() {
		for _, t := range files {
			t.close()
		}
	}()

	// watchDirs keeps one inotify watch on each directory holding a log.
	// A directory that was removed (and its watch with it) is watched
	// again once it is back, at the next poll.
	watchDirs := func() {
		if w == nil {
			return
		}
		dirs := map[string]bool{}
		for p, t := range files {
			dirs[filepath.Dir(p)] = true
			if t.real != "" {
				dirs[filepath.Dir(t.real)] = true
			}
		}
		watched.Set(dirs, func(d string, err error) {
			r.opts.Logger.Debug("cannot watch error log directory; polling it", "dir", d, "err", err)
		})
	}
	sync := func() {
		want := map[string]bool{}
		for _, p := range r.Paths() {
			want[p] = true
			if files[p] == nil {
				t := &tailFile{path: p, fromEnd: true, state: FileMissing}
				files[p] = t
				r.check(t, buf)
			}
		}
		for p, t := range files {
			if !want[p] {
				t.close()
				delete(files, p)
			}
		}
		watchDirs()
		r.publish(files)
	}
	checkAll := func() {
		for _, t := range files {
			r.check(t, buf)
		}
		r.publish(files)
	}
	sync()

	tick := time.NewTicker(r.opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.changed:
			sync()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			name := filepath.Clean(ev.Name)
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				// When name is a watched directory, it went away, and
				// its watch with it.
				watched.Forget(name)
			}
			dir := filepath.Dir(name)
			for p, t := range files {
				switch {
				case p == name, t.real == name:
					r.check(t, buf)
				case (filepath.Dir(p) == dir || filepath.Dir(t.real) == dir) && len(t.draining) > 0:
					r.drain(t, buf, false)
				}
			}
			r.publish(files)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			r.opts.Logger.Warn("error log watcher error; checking every file now, and at every poll", "err", err)
			// A lost event (queue overflow) may hide a rotation.
			checkAll()
		case <-tick.C:
			watchDirs()
			checkAll()
		}
	}
}

func (r *Reader) publish(files map[string]*tailFile) {
	var s [numFileStates]int
	for _, t := range files {
		s[t.state]++
	}
	r.setFileStates(s)
}

func (t *tailFile) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	for _, d := range t.draining {
		d.f.Close()
	}
	t.draining = nil
}

// check reads what is new in t and follows rotation: rename and
// re-creation (logrotate's create, then nginx -s reopen), copytruncate,
// deletion.
func (r *Reader) check(t *tailFile, buf []byte) {
	r.drain(t, buf, true)
	fi, err := os.Stat(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.readCurrent(t, buf)
		t.rotateAway(r)
		// Whatever appears at the path from now on is new.
		t.fromEnd = false
		r.setState(t, FileMissing, "error log file does not exist (yet)", nil)
		return
	case err != nil:
		r.readCurrent(t, buf)
		t.rotateAway(r)
		r.setState(t, FileUnreadable, "cannot read error log file", err)
		return
	case !fi.Mode().IsRegular():
		r.readCurrent(t, buf)
		t.rotateAway(r)
		r.setState(t, FileUnreadable, "error log is not a regular file (a FIFO, device or socket): not read; for /dev/stderr use the syslog receiver", nil)
		return
	}
	if real, err := filepath.EvalSymlinks(t.path); err == nil && real != t.path {
		t.real = real
	} else {
		t.real = ""
	}
	dev, ino := fileID(fi)
	if t.f != nil && (dev != t.dev || ino != t.ino) {
		// Renamed away and replaced: finish the old file, keep it for
		// nginx's last writes, read the new one from its start.
		r.readCurrent(t, buf)
		t.rotateAway(r)
		t.fromEnd = false
	}
	if t.f == nil && !r.open(t) {
		return
	}
	r.readCurrent(t, buf)
}

// readCurrent reads what is new in the open file. A file shorter than the
// offset, or whose bytes before the offset changed, was truncated in
// place (copytruncate), perhaps already refilled: what it holds now is
// new, from its start.
func (r *Reader) readCurrent(t *tailFile, buf []byte) {
	if t.f == nil {
		return
	}
	cur, err := t.f.Stat()
	if err != nil {
		return
	}
	if cur.Size() < t.off || (cur.Size() > t.off && !t.sigMatches()) {
		r.flush(&t.st)
		t.off = 0
		t.sig = t.sig[:0]
		t.st = lineState{}
	}
	t.off = r.read(t.f, t.off, &t.st, buf, &t.sig)
}

// open opens t.path, checking that what was opened is still a regular
// file (it may have been swapped for a FIFO between stat and open:
// O_NONBLOCK keeps the open from hanging on one).
func (r *Reader) open(t *tailFile) bool {
	f, err := os.OpenFile(t.path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		r.setState(t, FileUnreadable, "cannot open error log file (Debian's logs are 0640 www-data:adm: add the exporter's user to group adm)", err)
		return false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		r.setState(t, FileUnreadable, "error log is not a regular file: not read", err)
		return false
	}
	t.f = f
	t.dev, t.ino = fileID(fi)
	t.off = 0
	t.sig = t.sig[:0]
	t.st = lineState{}
	if t.fromEnd {
		t.off = fi.Size()
		t.loadSig()
	}
	t.fromEnd = false
	r.setState(t, FileTailing, "tailing error log", nil)
	return true
}

// rotateAway keeps the open file for draining: until nginx reopens its
// logs (USR1), it writes to the file it has open, whatever its name.
func (t *tailFile) rotateAway(r *Reader) {
	if t.f == nil {
		return
	}
	if len(t.draining) >= maxDraining {
		// Rotated again and again within DrainIdle: the oldest file is
		// the least likely to be written still.
		t.draining[0].f.Close()
		t.draining = append(t.draining[:0], t.draining[1:]...)
	}
	t.draining = append(t.draining, &drainFile{f: t.f, off: t.off, st: t.st, lastData: r.opts.Now()})
	t.f = nil
	t.st = lineState{}
	t.sig = t.sig[:0]
}

// drain reads rotated-away files; expire closes those idle for DrainIdle.
func (r *Reader) drain(t *tailFile, buf []byte, expire bool) {
	now := r.opts.Now()
	keep := t.draining[:0]
	for _, d := range t.draining {
		off := r.read(d.f, d.off, &d.st, buf, nil)
		if off != d.off {
			d.lastData = now
			d.off = off
		}
		if expire && now.Sub(d.lastData) >= r.opts.DrainIdle {
			r.flush(&d.st)
			d.f.Close()
			continue
		}
		keep = append(keep, d)
	}
	clear(t.draining[len(keep):])
	t.draining = keep
}

// read consumes f from off to its end, a chunk at a time, and returns the
// new offset. sig, when not nil, keeps the last bytes before it.
func (r *Reader) read(f *os.File, off int64, st *lineState, buf []byte, sig *[]byte) int64 {
	for {
		n, err := f.ReadAt(buf, off)
		if n > 0 {
			r.consume(st, buf[:n])
			off += int64(n)
			if sig != nil {
				tail := buf[max(0, n-sigLen):n]
				s := append((*sig)[:0], tail...)
				*sig = s
			}
		}
		if err != nil || n < len(buf) {
			if err != nil && !errors.Is(err, io.EOF) {
				r.opts.Logger.Debug("reading error log", "err", err)
			}
			return off
		}
	}
}

// sigMatches reports whether the bytes before the offset are still those
// read there.
func (t *tailFile) sigMatches() bool {
	if len(t.sig) == 0 {
		return true
	}
	b := make([]byte, len(t.sig))
	n, _ := t.f.ReadAt(b, t.off-int64(len(t.sig)))
	return n == len(b) && bytes.Equal(b, t.sig)
}

func (t *tailFile) loadSig() {
	n := min(int64(sigLen), t.off)
	if n == 0 {
		return
	}
	b := make([]byte, n)
	if m, _ := t.f.ReadAt(b, t.off-n); int64(m) == n {
		t.sig = b
	}
}

// setState records a state change and logs it once.
func (r *Reader) setState(t *tailFile, s FileState, msg string, err error) {
	e := ""
	if err != nil {
		e = err.Error()
	}
	if t.logged && t.state == s && t.lastErr == e {
		return
	}
	t.logged = true
	t.state, t.lastErr = s, e
	switch s {
	case FileUnreadable:
		r.opts.Logger.Warn(msg, "path", t.path, "err", err)
	default:
		r.opts.Logger.Info(msg, "path", t.path)
	}
}

func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}
