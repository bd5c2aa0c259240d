package errorlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"syscall"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// RecentFile is what Recent could read of one log.
type RecentFile struct {
	Path  string
	State FileState
	// Err says why a file is missing or unreadable.
	Err error
	// Bytes is how much of its end was read.
	Bytes int64
}

// RecentTarget is what nginx logged lately about one target.
type RecentTarget struct {
	// Errors and BodyErrors count by reason (see TargetErrors).
	Errors, BodyErrors map[prober.Reason]int
	// Last is the time written on the last error line (nginx's local
	// time), LastLine that line without query strings and header values.
	Last     time.Time
	LastLine string
}

// RecentReport is the recent part of every log, attributed.
type RecentReport struct {
	Files   []RecentFile
	Targets map[discovery.Key]*RecentTarget
	// Unattributed counts errors of no single target, by reason.
	Unattributed map[prober.Reason]int
	// NoLive counts "no live upstreams" by upstream.
	NoLive map[string]int
	// Since is the time of the oldest entry read, zero when none.
	Since time.Time
}

// Recent reads at most maxBytes from the end of each file (whole lines
// only) and attributes what nginx logged to the targets of set, for
// diagnose. Times are read in loc, nginx's time zone.
func Recent(paths []string, set *discovery.Set, maxBytes int64, loc *time.Location) *RecentReport {
	x := NewIndex(set)
	rep := &RecentReport{Targets: map[discovery.Key]*RecentTarget{}, Unattributed: map[prober.Reason]int{}, NoLive: map[string]int{}}
	for _, p := range paths {
		data, f := readEnd(p, maxBytes)
		rep.Files = append(rep.Files, f)
		var st lineState
		for len(data) > 0 {
			nl := bytes.IndexByte(data, '\n')
			if nl < 0 {
				break // a line still being written
			}
			line := data[:nl]
			data = data[nl+1:]
			if len(line) > MaxLine || st.continues(line) {
				continue
			}
			var e Entry
			st.parse(line, &e)
			rep.add(x, &e, line, loc)
		}
	}
	return rep
}

func (rep *RecentReport) add(x *Index, e *Entry, line []byte, loc *time.Location) {
	if e.Kind == KindOther || e.Kind == KindUnparsed {
		return
	}
	ts := e.Timestamp(loc)
	if !ts.IsZero() && (rep.Since.IsZero() || ts.Before(rep.Since)) {
		rep.Since = ts
	}
	if e.Kind == KindNoLiveUpstreams {
		if u, ok := x.Upstream(e.Peer); ok {
			rep.NoLive[u]++
		}
		return
	}
	a := x.Attribute(e.Protocol, e.Peer)
	if a.Target == nil && len(e.Peer) == 0 && len(e.Host) > 0 {
		a = x.AttributeHost(e.Host)
	}
	if a.Target == nil {
		rep.Unattributed[e.Reason]++
		return
	}
	t := rep.Targets[a.Target.Key]
	if t == nil {
		t = &RecentTarget{Errors: map[prober.Reason]int{}, BodyErrors: map[prober.Reason]int{}}
		rep.Targets[a.Target.Key] = t
	}
	if e.Stage == StageBody {
		t.BodyErrors[e.Reason]++
	} else {
		t.Errors[e.Reason]++
	}
	if !ts.Before(t.Last) {
		t.Last = ts
		t.LastLine = Redact(line)
	}
}

// readEnd reads the last maxBytes of path, from the first line start.
func readEnd(path string, maxBytes int64) ([]byte, RecentFile) {
	rf := RecentFile{Path: path}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rf.State, rf.Err = FileMissing, err
		return nil, rf
	case err != nil:
		rf.State, rf.Err = FileUnreadable, err
		return nil, rf
	case !fi.Mode().IsRegular():
		rf.State, rf.Err = FileUnreadable, fmt.Errorf("%s is not a regular file", path)
		return nil, rf
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		rf.State, rf.Err = FileUnreadable, err
		return nil, rf
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		rf.State, rf.Err = FileUnreadable, fmt.Errorf("%s is not a regular file", path)
		return nil, rf
	}
	off := max(0, fi.Size()-maxBytes)
	buf := make([]byte, fi.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		rf.State, rf.Err = FileUnreadable, err
		return nil, rf
	}
	buf = buf[:n]
	if off > 0 {
		// The first line is cut: skip to the next.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		} else {
			buf = nil
		}
	}
	rf.State, rf.Bytes = FileTailing, int64(n)
	return buf, rf
}

var queryString = regexp.MustCompile(`\?[^" ]*`)

// Redact removes from a line what may be private: query strings (in the
// request line and the upstream URI) and header values (Host, referrer).
// Bytes that are not printable ASCII become '?'.
func Redact(line []byte) string {
	s := make([]byte, 0, len(line))
	for _, c := range line {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		s = append(s, c)
	}
	start := max(0, bytes.Index(s, []byte(`, upstream: "`)))
	for _, f := range []string{`, host: "`, `, referrer: "`} {
		if i := bytes.Index(s[start:], []byte(f)); i >= 0 {
			s = append(s[:start+i], f+`…"`...)
			break
		}
	}
	return string(queryString.ReplaceAll(s, []byte("?…")))
}
