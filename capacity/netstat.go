package capacity

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// NetStat holds the namespace-wide listen counters of /proc/net/netstat
// (TcpExt): every SYN or completed connection a full accept queue
// dropped, on any listener of the namespace since boot.
type NetStat struct {
	// ListenOverflows counts connections dropped because an accept queue
	// was full (LINUX_MIB_LISTENOVERFLOWS).
	ListenOverflows uint64
	// ListenDrops counts every drop at a listener, overflows included
	// (LINUX_MIB_LISTENDROPS).
	ListenDrops uint64
}

// parseNetStat reads the TcpExt header and value lines of r.
func parseNetStat(r io.Reader) (NetStat, error) {
	var ns NetStat
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	sc.Buffer(make([]byte, 0, 8<<10), 64<<10)
	var header [][]byte
	found := 0
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("TcpExt:")) {
			continue
		}
		fields := bytes.Fields(line[len("TcpExt:"):])
		if header == nil {
			header = make([][]byte, len(fields))
			for i, f := range fields {
				header[i] = append([]byte(nil), f...)
			}
			continue
		}
		if len(fields) != len(header) {
			return ns, fmt.Errorf("/proc/net/netstat: TcpExt has %d names and %d values", len(header), len(fields))
		}
		for i, name := range header {
			var dst *uint64
			switch string(name) {
			case "ListenOverflows":
				dst = &ns.ListenOverflows
			case "ListenDrops":
				dst = &ns.ListenDrops
			default:
				continue
			}
			v, err := strconv.ParseUint(string(fields[i]), 10, 64)
			if err != nil {
				return ns, fmt.Errorf("/proc/net/netstat: %s: %w", name, err)
			}
			*dst = v
			found++
		}
		break
	}
	if err := sc.Err(); err != nil {
		return ns, fmt.Errorf("/proc/net/netstat: %w", err)
	}
	if found != 2 {
		return ns, fmt.Errorf("/proc/net/netstat: no TcpExt ListenOverflows and ListenDrops")
	}
	return ns, nil
}
