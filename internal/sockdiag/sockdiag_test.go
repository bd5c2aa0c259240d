package sockdiag

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// message lays out struct inet_diag_msg followed by attrs, as the
// kernel writes it on this machine.
func message(fam, state uint8, src, dst netip.AddrPort, rq, wq, ino uint32, attrs ...[]byte) []byte {
	b := make([]byte, sizeofInetDiagMsg)
	ne := binary.NativeEndian
	b[0], b[1] = fam, state
	binary.BigEndian.PutUint16(b[4:6], src.Port())
	binary.BigEndian.PutUint16(b[6:8], dst.Port())
	if fam == unix.AF_INET {
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(b[8:12], s4[:])
		copy(b[24:28], d4[:])
	} else {
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		copy(b[8:24], s16[:])
		copy(b[24:40], d16[:])
	}
	ne.PutUint32(b[56:60], rq)
	ne.PutUint32(b[60:64], wq)
	ne.PutUint32(b[68:72], ino)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// attr lays out one struct nlattr with its value padded to 4 bytes.
func attr(typ uint16, v ...byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestParse(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name    string
		msg     []byte
		want    Socket
		wantErr bool
	}{
		{
			name: "ipv4 established",
			msg:  message(unix.AF_INET, StateEstablished, ap("127.0.0.1:40000"), ap("127.0.0.2:9000"), 0, 0, 4242),
			want: Socket{Family: unix.AF_INET, State: StateEstablished, Src: ap("127.0.0.1:40000"), Dst: ap("127.0.0.2:9000"), Inode: 4242},
		},
		{
			name: "ipv6 listener with queue, backlog and v6only",
			msg:  message(unix.AF_INET6, StateListen, ap("[::]:8080"), ap("[::]:0"), 3, 511, 7, attr(attrSKV6Only, 1)),
			want: Socket{Family: unix.AF_INET6, State: StateListen, Src: ap("[::]:8080"), Dst: ap("[::]:0"), RQueue: 3, WQueue: 511, Inode: 7, V6Only: true},
		},
		{
			name: "ipv6 dual-stack listener, other attributes skipped",
			msg:  message(unix.AF_INET6, StateListen, ap("[::]:80"), ap("[::]:0"), 0, 128, 8, attr(5, 1, 2, 3), attr(attrSKV6Only, 0)),
			want: Socket{Family: unix.AF_INET6, State: StateListen, Src: ap("[::]:80"), Dst: ap("[::]:0"), WQueue: 128, Inode: 8},
		},
		{
			name: "syn_sent to a mapped address",
			msg:  message(unix.AF_INET6, StateSynSent, ap("[::ffff:127.0.0.1]:5"), ap("[::ffff:127.0.0.9]:6"), 0, 1, 9),
			want: Socket{Family: unix.AF_INET6, State: StateSynSent, Src: ap("[::ffff:127.0.0.1]:5"), Dst: ap("[::ffff:127.0.0.9]:6"), WQueue: 1, Inode: 9},
		},
		{name: "short", msg: make([]byte, sizeofInetDiagMsg-1), wantErr: true},
		{name: "attribute longer than the message", msg: append(message(unix.AF_INET, 1, ap("127.0.0.1:1"), ap("127.0.0.1:2"), 0, 0, 1), 40, 0, 11, 0), wantErr: true},
		{name: "attribute shorter than its header", msg: append(message(unix.AF_INET, 1, ap("127.0.0.1:1"), ap("127.0.0.1:2"), 0, 0, 1), 2, 0, 11, 0), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Socket{Inode: 99, V6Only: true} // Parse must not keep what was there
			err := Parse(tc.msg, &s)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Parse accepted %x: %+v", tc.msg, s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s != tc.want {
				t.Errorf("Parse = %+v, want %+v", s, tc.want)
			}
		})
	}
	var s Socket
	if err := Parse(nil, &s); !errors.Is(err, ErrShort) {
		t.Errorf("Parse(nil) = %v, want ErrShort", err)
	}
}

// inodeOf returns the inode /proc/self/fd names for c's descriptor.
func inodeOf(t *testing.T, c syscall.Conn) uint32 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ino uint32
	if err := rc.Control(func(fd uintptr) {
		l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
		if err != nil {
			t.Error(err)
			return
		}
		v, _ := strings.CutPrefix(l, "socket:[")
		n, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 32)
		if err != nil {
			t.Errorf("%s: %v", l, err)
		}
		ino = uint32(n)
	}); err != nil {
		t.Fatal(err)
	}
	return ino
}

// TestDumpTCP dumps this process's own sockets on 127.0.0.1 and ::1: a
// listener, the connection made to it and the accepted end, each found
// by inode with its state and addresses; a state mask leaves out the
// states it does not name; fn returning false ends the walk.
func TestDumpTCP(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		family        uint8
	}{
		{"tcp4", "127.0.0.1:0", unix.AF_INET},
		{"tcp6", "[::1]:0", unix.AF_INET6},
	} {
		t.Run(tc.network, func(t *testing.T) {
			l, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				t.Skipf("no %s here: %v", tc.network, err)
			}
			defer l.Close()
			c, err := net.Dial(tc.network, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			lIno := inodeOf(t, l.(*net.TCPListener))
			cIno := inodeOf(t, c.(*net.TCPConn))
			aIno := inodeOf(t, a.(*net.TCPConn))

			found := map[uint32]Socket{}
			err = DumpTCP(tc.family, StateMask(StateEstablished, StateListen), func(s *Socket) bool {
				if s.Inode == lIno || s.Inode == cIno || s.Inode == aIno {
					found[s.Inode] = *s
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			lAddr := netip.MustParseAddrPort(l.Addr().String())
			cAddr := netip.MustParseAddrPort(c.LocalAddr().String())
			if s, ok := found[lIno]; !ok || s.State != StateListen || s.Src != lAddr || s.Family != tc.family {
				t.Errorf("listener %v (inode %d): got %+v, %v", lAddr, lIno, s, ok)
			}
			if s, ok := found[cIno]; !ok || s.State != StateEstablished || s.Src != cAddr || s.Dst != lAddr {
				t.Errorf("connection %v -> %v (inode %d): got %+v, %v", cAddr, lAddr, cIno, s, ok)
			}
			if s, ok := found[aIno]; !ok || s.State != StateEstablished || s.Src != lAddr || s.Dst != cAddr {
				t.Errorf("accepted end %v -> %v (inode %d): got %+v, %v", lAddr, cAddr, aIno, s, ok)
			}

			var listeners int
			err = DumpTCP(tc.family, StateMask(StateListen), func(s *Socket) bool {
				if s.State != StateListen {
					t.Errorf("a listeners-only dump returned %+v", *s)
				}
				if s.Inode == cIno || s.Inode == aIno {
					t.Errorf("a listeners-only dump returned a connection: %+v", *s)
				}
				listeners++
				return true
			})
			if err != nil || listeners == 0 {
				t.Errorf("listeners-only dump: %d sockets, %v", listeners, err)
			}

			var calls int
			if err := DumpTCP(tc.family, StateMask(StateEstablished, StateListen), func(*Socket) bool {
				calls++
				return false
			}); err != nil || calls != 1 {
				t.Errorf("fn returning false: %d calls, %v; want 1, nil", calls, err)
			}
		})
	}
}

// TestDumpTCPAllocations holds a dump's allocations independent of the
// number of sockets walked: the reason this package exists.
func TestDumpTCPAllocations(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).AddrPort().Port()
	// count returns the sockets a dump walked, and those of this test
	// (its listener's port at either end): other processes' sockets come
	// and go meanwhile.
	count := func() (all, own int) {
		err := DumpTCP(unix.AF_INET, StateMask(StateEstablished, StateListen), func(s *Socket) bool {
			all++
			if s.Src.Port() == port || s.Dst.Port() == port {
				own++
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return all, own
	}
	// dump returns a dump's allocations and the sockets it walked on
	// average over the same runs.
	dump := func() (allocs, walked float64) {
		runs := 0
		allocs = testing.AllocsPerRun(20, func() {
			n, _ := count()
			walked += float64(n)
			runs++
		})
		return allocs, walked / float64(runs)
	}
	_, ownBefore := count()
	few, walkedFew := dump()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c, a)
	}
	if _, own := count(); own != ownBefore+400 {
		t.Fatalf("the dump saw %d of this test's sockets after opening 400, %d before", own, ownBefore)
	}
	many, walkedMany := dump()
	// On a busy host the other sockets may have gone meanwhile: the
	// comparison needs the dumps to differ by most of the 400.
	if walkedMany-walkedFew < 200 {
		t.Skipf("the host's other sockets changed during the test: dumps walked %.0f then %.0f sockets", walkedFew, walkedMany)
	}
	// 400 more sockets are a few more datagrams read into the same
	// buffer: not one allocation more. (The netlink library's reader
	// allocated a slice of messages per datagram, its socket helper three
	// objects per socket.)
	if many > few {
		t.Errorf("allocations per dump: %.0f walking %.0f sockets, %.0f walking %.0f: they grow with the sockets", few, walkedFew, many, walkedMany)
	}
}

// TestDump covers what a dump does besides walking sockets: it stops when
// fn says so, reports the kernel's refusal, and a datagram larger than
// its buffer.
func TestDump(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	listeners := tcpRequest(unix.AF_INET, StateMask(StateListen))

	calls := 0
	if err := Dump(listeners, func([]byte) bool { calls++; return false }); err != nil || calls != 1 {
		t.Errorf("fn returning false at once: %d calls, %v; want 1, nil", calls, err)
	}

	all := 0
	if err := Dump(listeners, func([]byte) bool { all++; return true }); err != nil || all < 1 {
		t.Errorf("whole dump: %d listeners, %v; want this test's at least", all, err)
	}

	// A family past AF_MAX: the kernel answers EINVAL.
	bad := tcpRequest(255, StateMask(StateListen))
	if err := Dump(bad, func([]byte) bool { return true }); !errors.Is(err, unix.EINVAL) {
		t.Errorf("family 255: %v, want EINVAL", err)
	}

	// A buffer smaller than one answer: cut, reported, never parsed.
	parsed := 0
	err = dump(listeners, unix.NLMSG_HDRLEN+sizeofInetDiagMsg/2, func([]byte) bool { parsed++; return true })
	if !errors.Is(err, ErrTruncated) || parsed != 0 {
		t.Errorf("short buffer: %v after %d messages, want ErrTruncated before any", err, parsed)
	}
}

// FuzzParse feeds arbitrary bytes to the message parser: the kernel's
// answers are trusted, but a parser must not panic on any.
func FuzzParse(f *testing.F) {
	f.Add(message(unix.AF_INET, StateEstablished, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), 0, 0, 1))
	f.Add(message(unix.AF_INET6, StateListen, netip.MustParseAddrPort("[::]:1"), netip.MustParseAddrPort("[::]:0"), 0, 0, 1, attr(attrSKV6Only, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Socket
		if Parse(b, &s) == nil && len(b) < sizeofInetDiagMsg {
			t.Fatalf("Parse accepted %d bytes", len(b))
		}
	})
}
