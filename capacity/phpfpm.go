package capacity

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// php-fpm pools: when the process behind a socket is php-fpm's master, its
// command line names its configuration ("php-fpm: master process
// (/etc/php/8.2/fpm/php-fpm.conf)"); the pool whose `listen` is the
// target's socket or address gives pm, pm.max_children, listen.backlog,
// pm.status_path and pm.status_listen. The status page is read over
// FastCGI with a hard deadline, preferably on pm.status_listen: the main
// socket's status page is served by one of the pool's own workers, so it
// goes unanswered exactly when the pool is full.

// Pool is one php-fpm pool's configuration.
type Pool struct {
	Name string
	// Listen is the pool's `listen` value.
	Listen string
	// PM is the process manager: static, dynamic or ondemand.
	PM string
	// MaxChildren is pm.max_children, 0 when not set.
	MaxChildren int
	// Backlog is listen.backlog, 0 when not set (php-fpm then uses 511,
	// capped by net.core.somaxconn; the kernel's limit says which).
	Backlog      int
	StatusPath   string
	StatusListen string
}

// fpmMasterTitle is the title php-fpm gives its master process.
var fpmMasterTitle = regexp.MustCompile(`^php-fpm[0-9.]*: master process \((.+)\)$`)

// isPHPFPM reports whether a command line is php-fpm's (master or pool
// worker) and returns the master's configuration path when it says it.
func isPHPFPM(cmdline string) (config string, ok bool) {
	if m := fpmMasterTitle.FindStringSubmatch(strings.TrimSpace(cmdline)); m != nil {
		return m[1], true
	}
	args := strings.Fields(cmdline)
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "php-fpm") {
		return "", false
	}
	// A master that has not set its title yet: its -y argument.
	for i, a := range args[1:] {
		switch {
		case (a == "-y" || a == "--fpm-config") && i+2 < len(args):
			return args[i+2], true
		case strings.HasPrefix(a, "--fpm-config="):
			return strings.TrimPrefix(a, "--fpm-config="), true
		}
	}
	return "", true
}

// Bounds of a php-fpm configuration read.
const (
	maxFPMFiles    = 256
	maxFPMFileSize = 1 << 20
)

// loadFPMPools reads the pools of php-fpm's configuration file and its
// includes. prefix resolves relative include patterns, as php-fpm's -p
// does (php-fpm's default is its installation prefix, /usr).
func loadFPMPools(path, prefix string) ([]Pool, error) {
	var pools []Pool
	files := 0
	var load func(path string) error
	load = func(path string) error {
		files++
		if files > maxFPMFiles {
			return fmt.Errorf("more than %d php-fpm configuration files", maxFPMFiles)
		}
		b, err := readBounded(path, maxFPMFileSize+1)
		if err != nil {
			return fmt.Errorf("php-fpm configuration: %w", err)
		}
		if len(b) > maxFPMFileSize {
			return fmt.Errorf("php-fpm configuration %s: larger than %d bytes", path, maxFPMFileSize)
		}
		section := ""
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 4096), maxFPMFileSize)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == ';' || line[0] == '#' {
				continue
			}
			if line[0] == '[' && strings.HasSuffix(line, "]") {
				section = strings.TrimSpace(line[1 : len(line)-1])
				if section != "global" {
					pools = append(pools, Pool{Name: section})
				}
				continue
			}
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			key, value = strings.TrimSpace(key), iniValue(value)
			if key == "include" {
				pattern := value
				if !filepath.IsAbs(pattern) {
					pattern = filepath.Join(prefix, pattern)
				}
				matches, err := filepath.Glob(pattern)
				if err != nil {
					return fmt.Errorf("php-fpm include %q: %w", value, err)
				}
				for _, m := range matches {
					if err := load(m); err != nil {
						return err
					}
				}
				continue
			}
			if section == "global" || section == "" || len(pools) == 0 {
				continue
			}
			p := &pools[len(pools)-1]
			value = strings.ReplaceAll(value, "$pool", p.Name)
			switch key {
			case "listen":
				p.Listen = value
			case "pm":
				p.PM = value
			case "pm.max_children":
				p.MaxChildren, _ = strconv.Atoi(value)
			case "listen.backlog":
				p.Backlog, _ = strconv.Atoi(value)
			case "pm.status_path":
				p.StatusPath = value
			case "pm.status_listen":
				p.StatusListen = value
			}
		}
		return sc.Err()
	}
	if err := load(path); err != nil {
		return nil, err
	}
	return pools, nil
}

// iniValue trims a value and its quotes and trailing comment.
func iniValue(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	if i := strings.Index(v, " ;"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

// fpmAddress is a php-fpm `listen` value as network and address.
func fpmAddress(listen string) (network, addr string) {
	if strings.HasPrefix(listen, "/") {
		return "unix", filepath.Clean(listen)
	}
	if _, err := strconv.Atoi(listen); err == nil {
		// A bare port: php-fpm listens on every address.
		return "tcp", net.JoinHostPort("0.0.0.0", listen)
	}
	return "tcp", listen
}

// listensOn reports whether the pool's `listen` is the target's socket
// path or TCP address.
func (p *Pool) listensOn(network, addr string) bool {
	pn, pa := fpmAddress(p.Listen)
	if pn != network {
		return false
	}
	if network == "unix" {
		return pa == filepath.Clean(addr)
	}
	want, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	host, port, err := net.SplitHostPort(pa)
	if err != nil || port != strconv.Itoa(int(want.Port())) {
		return false
	}
	if host == "" || host == "*" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.IsUnspecified() || ip.Unmap() == want.Addr().Unmap()
}

// FPMStatus is php-fpm's status page (pm.status_path, ?json).
type FPMStatus struct {
	Pool               string `json:"pool"`
	ProcessManager     string `json:"process manager"`
	ListenQueue        uint64 `json:"listen queue"`
	ListenQueueLen     uint64 `json:"listen queue len"`
	IdleProcesses      uint64 `json:"idle processes"`
	ActiveProcesses    uint64 `json:"active processes"`
	TotalProcesses     uint64 `json:"total processes"`
	MaxChildrenReached uint64 `json:"max children reached"`
	SlowRequests       uint64 `json:"slow requests"`
}

// errStatusHTTP is a status page answered with a non-200 status.
var errStatusHTTP = errors.New("php-fpm status page did not answer 200")

// maxStatusBytes bounds the status response (the short form is ~400 B).
const maxStatusBytes = 64 << 10

// readFPMStatus reads the status page at path from the pool's socket addr
// (a `listen` value) before the deadline.
func readFPMStatus(ctx context.Context, listen, path string, deadline time.Time) (*FPMStatus, error) {
	network, addr := fpmAddress(listen)
	if network == "tcp" {
		if host, port, err := net.SplitHostPort(addr); err == nil && (host == "0.0.0.0" || host == "" || host == "*" || host == "::") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to php-fpm status %s: %w", listen, err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	// Closing the connection unblocks the exchange when ctx ends first.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	out, err := prober.FastCGIGet(conn, path, "json", maxStatusBytes)
	if err != nil {
		return nil, fmt.Errorf("reading php-fpm status %s%s: %w", listen, path, err)
	}
	return parseFPMStatus(out)
}

// parseFPMStatus parses the CGI response of the status page.
func parseFPMStatus(out []byte) (*FPMStatus, error) {
	head, body, ok := bytes.Cut(out, []byte("\r\n\r\n"))
	if !ok {
		head, body, ok = bytes.Cut(out, []byte("\n\n"))
		if !ok {
			return nil, errors.New("php-fpm status: no end of CGI header")
		}
	}
	for line := range bytes.SplitSeq(head, []byte("\n")) {
		k, v, _ := bytes.Cut(bytes.TrimSpace(line), []byte(":"))
		if strings.EqualFold(string(k), "Status") && !bytes.HasPrefix(bytes.TrimSpace(v), []byte("200")) {
			return nil, fmt.Errorf("%w: %s", errStatusHTTP, bytes.TrimSpace(v))
		}
	}
	var s FPMStatus
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("php-fpm status JSON: %w", err)
	}
	return &s, nil
}

// fpmConfigCache keeps parsed php-fpm configurations per master process
// (pid and start time), so that one master serving many pools is read
// once, and a restarted or reloaded master is read again.
type fpmConfigCache struct {
	procRoot string
	entries  map[fpmKey]fpmEntry
}

type fpmKey struct {
	pid        int
	startTicks uint64
	config     string
}

type fpmEntry struct {
	pools []Pool
	err   error
	read  time.Time
}

// fpmConfigTTL: php-fpm reloads its configuration on SIGUSR2 without a
// new master, so parsed pools are re-read this often.
const fpmConfigTTL = time.Minute

func (c *fpmConfigCache) pools(pr *Process, config string, now time.Time) ([]Pool, error) {
	if c.entries == nil {
		c.entries = map[fpmKey]fpmEntry{}
	}
	k := fpmKey{pid: pr.PID, startTicks: pr.startTicks, config: config}
	if e, ok := c.entries[k]; ok && now.Sub(e.read) < fpmConfigTTL {
		return e.pools, e.err
	}
	path := config
	if !filepath.IsAbs(path) {
		// A relative -y is relative to the master's working directory.
		if cwd, err := os.Readlink(filepath.Join(c.procRoot, strconv.Itoa(pr.PID), "cwd")); err == nil {
			path = filepath.Join(cwd, path)
		}
	}
	pools, err := loadFPMPools(path, "/usr")
	c.entries[k] = fpmEntry{pools: pools, err: err, read: now}
	return pools, err
}

// trim forgets masters not seen in this refresh.
func (c *fpmConfigCache) trim(seen map[fpmKey]bool) {
	for k := range c.entries {
		if !seen[k] {
			delete(c.entries, k)
		}
	}
}
