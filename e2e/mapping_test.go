package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// noStart is the status recorded when nginx refuses to start (for example
// "host not found in upstream" at load time), written "no start" in the
// mapping table.
const noStart = 0

// mappingRow is one row of the failure-reason table in docs/metrics.md.
type mappingRow struct {
	reason   prober.Reason
	messages []string         // the backquoted nginx messages, as written
	patterns []*regexp.Regexp // one per message
	statuses []int            // what nginx answers the client; noStart for "no start"
}

// mappingTable is the single mapping between nginx's error-log messages and
// the exporter's failure reasons. It is read from docs/metrics.md, so the
// suite asserts exactly what the documentation promises.
type mappingTable []mappingRow

// docsPath is the metrics reference, relative to this package.
var docsPath = filepath.Join("..", "docs", "metrics.md")

var (
	backquoted  = regexp.MustCompile("`([^`]+)`")
	placeholder = regexp.MustCompile(` ?… ?|<[^>]+>|\bN\b`)
	statusCode  = regexp.MustCompile(`\b[1-5][0-9][0-9]\b`)
)

// loadMapping parses the "Failure reasons" table of docs/metrics.md.
func loadMapping(path string) (mappingTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		table   mappingTable
		inTable bool
		section string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = strings.TrimSpace(strings.TrimPrefix(line, "## "))
			inTable = false
			continue
		}
		if section != "Failure reasons" || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := splitRow(line)
		// The fifth column says what the error-log reader keys on.
		if len(cells) != 5 {
			return nil, fmt.Errorf("%s: row %q has %d cells, want 5", path, line, len(cells))
		}
		if !inTable { // header row, then the |---| separator
			if cells[0] != "reason" {
				return nil, fmt.Errorf("%s: unexpected header %q", path, line)
			}
			inTable = true
			continue
		}
		if strings.HasPrefix(cells[0], "---") {
			continue
		}
		row, err := parseRow(cells)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		table = append(table, row)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(table) == 0 {
		return nil, fmt.Errorf("%s: no \"Failure reasons\" table found", path)
	}
	return table, nil
}

func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

func parseRow(cells []string) (mappingRow, error) {
	r := mappingRow{reason: prober.Reason(strings.Trim(cells[0], "`"))}
	for _, m := range backquoted.FindAllStringSubmatch(cells[1], -1) {
		msg := m[1]
		r.messages = append(r.messages, msg)
		r.patterns = append(r.patterns, messagePattern(msg))
	}
	if len(r.messages) == 0 {
		return r, fmt.Errorf("reason %s: no backquoted nginx message", r.reason)
	}
	if strings.Contains(cells[3], "no start") {
		r.statuses = append(r.statuses, noStart)
	}
	for _, s := range statusCode.FindAllString(cells[3], -1) {
		n, _ := strconv.Atoi(s)
		r.statuses = append(r.statuses, n)
	}
	if len(r.statuses) == 0 {
		return r, fmt.Errorf("reason %s: no status in %q", r.reason, cells[3])
	}
	return r, nil
}

// messagePattern turns a documented message into a regular expression:
// `<addr>`, `<path>`, `<host>`, `<name>` and `…` stand for any text, a
// lone `N` for a number. An ellipsis takes the spaces around it, which are
// typography: OpenSSL 3 writes "SSL routines::wrong version number" where
// the table says "(… wrong version number)". Every placeholder is a capture group so that
// classify can prefer the most specific of several matching messages.
func messagePattern(msg string) *regexp.Regexp {
	var b strings.Builder
	last := 0
	for _, loc := range placeholder.FindAllStringIndex(msg, -1) {
		b.WriteString(regexp.QuoteMeta(msg[last:loc[0]]))
		if msg[loc[0]:loc[1]] == "N" {
			b.WriteString(`([0-9]+)`)
		} else {
			b.WriteString(`(.*?)`)
		}
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(msg[last:]))
	return regexp.MustCompile(b.String())
}

// classify maps one nginx error-log line to a reason. It returns the
// documented message that matched, or ok=false when no row matches. When
// several messages match, the one whose placeholders cover the fewest
// characters of the line wins, then the longer message: "SSL_do_handshake()
// failed (… wrong version number)" beats "SSL_do_handshake() failed (…)
// while SSL handshaking to upstream" for a wrong-version line.
func (m mappingTable) classify(line string) (reason prober.Reason, message string, ok bool) {
	bestWild, bestLen := -1, -1
	for _, row := range m {
		for i, re := range row.patterns {
			loc := re.FindStringSubmatchIndex(line)
			if loc == nil {
				continue
			}
			wild := 0
			for g := 2; g+1 < len(loc); g += 2 {
				wild += loc[g+1] - loc[g]
			}
			msgLen := len(row.messages[i])
			if bestWild < 0 || wild < bestWild || (wild == bestWild && msgLen > bestLen) {
				bestWild, bestLen = wild, msgLen
				reason, message, ok = row.reason, row.messages[i], true
			}
		}
	}
	return reason, message, ok
}

// statuses returns the statuses nginx may answer for reason.
func (m mappingTable) statuses(reason prober.Reason) []int {
	for _, row := range m {
		if row.reason == reason {
			return row.statuses
		}
	}
	return nil
}

// TestMappingTableMatchesVocabulary keeps the documented table and the
// exporter's reason vocabulary in sync: every reason the exporter can
// report has exactly one row, in the same order, and nothing else does.
func TestMappingTableMatchesVocabulary(t *testing.T) {
	table, err := loadMapping(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	var documented []prober.Reason
	for _, row := range table {
		documented = append(documented, row.reason)
	}
	if !slices.Equal(documented, prober.Reasons[:]) {
		t.Errorf("docs/metrics.md reasons = %v\nprober.Reasons          = %v", documented, prober.Reasons)
	}
}

// TestMappingTableClassifiesNginxLines checks the table against error-log
// lines as nginx 1.22 writes them, so a wording change in the
// documentation that would stop matching real nginx is caught without
// running nginx.
func TestMappingTableClassifiesNginxLines(t *testing.T) {
	table, err := loadMapping(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	const ctx = `, client: 127.0.0.1, server: , request: "GET / HTTP/1.0", upstream: "http://127.0.0.1:8080/", host: "e2e"`
	const streamCtx = `, client: 127.0.0.1, server: 127.0.0.1:5432, upstream: "127.0.0.1:15432", bytes from/to client:0/0, bytes from/to upstream:0/0`
	tests := []struct {
		line string
		want prober.Reason
	}{
		{`[emerg] 7#7: host not found in upstream "nx.invalid:80" in /tmp/x/nginx.conf:12`, prober.ReasonDNSError},
		{`[error] 7#7: *1 nx.invalid could not be resolved (3: Host not found)` + ctx, prober.ReasonDNSError},
		{`[error] 7#7: *1 connect() failed (111: Connection refused) while connecting to upstream` + ctx, prober.ReasonConnectionRefused},
		{`[error] 7#7: *1 connect() to unix:/tmp/x.sock failed (111: Connection refused) while connecting to upstream` + ctx, prober.ReasonConnectionRefused},
		{`[crit] 7#7: *1 connect() to unix:/tmp/x.sock failed (2: No such file or directory) while connecting to upstream` + ctx, prober.ReasonSocketNotFound},
		{`[crit] 7#7: *1 connect() to unix:/tmp/p/x.sock failed (13: Permission denied) while connecting to upstream` + ctx, prober.ReasonPermissionDenied},
		{`[error] 7#7: *1 connect() to unix:/tmp/x.sock failed (11: Resource temporarily unavailable) while connecting to upstream` + ctx, prober.ReasonBacklogFull},
		{`[error] 7#7: *1 upstream timed out (110: Connection timed out) while connecting to upstream` + ctx, prober.ReasonConnectTimeout},
		{`[error] 7#7: *1 upstream timed out (110: Connection timed out) while SSL handshaking to upstream` + ctx, prober.ReasonTLSHandshakeTimeout},
		{`[error] 7#7: *1 upstream timed out (110: Connection timed out) while reading response header from upstream` + ctx, prober.ReasonReadTimeout},
		{`[error] 7#7: *1 SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream` + ctx, prober.ReasonProtocolMismatch},
		{`[error] 7#7: *1 SSL_do_handshake() failed (SSL: error:0A00042E:SSL routines::tlsv1 alert protocol version:SSL alert number 70) while SSL handshaking to upstream` + ctx, prober.ReasonTLSHandshakeFailed},
		{`[error] 7#7: *1 upstream SSL certificate verify error: (20:unable to get local issuer certificate) while SSL handshaking to upstream` + ctx, prober.ReasonTLSCertificateInvalid},
		{`[error] 7#7: *1 upstream SSL certificate does not match "backend.test" while SSL handshaking to upstream` + ctx, prober.ReasonTLSCertificateInvalid},
		{`[error] 7#7: *1 recv() failed (104: Connection reset by peer) while reading response header from upstream` + ctx, prober.ReasonConnectionReset},
		{`[error] 7#7: *1 upstream prematurely closed connection while reading response header from upstream` + ctx, prober.ReasonPrematureClose},
		{`[error] 7#7: *1 upstream sent too big header while reading response header from upstream` + ctx, prober.ReasonHeaderTooBig},
		{`[error] 7#7: *1 upstream sent unsupported FastCGI protocol version: 72 while reading response header from upstream` + ctx, prober.ReasonProtocolMismatch},
		{`[error] 7#7: *1 upstream sent no valid HTTP/1.0 header while reading response header from upstream` + ctx, prober.ReasonInvalidResponse},
		// stream{}, as nginx 1.22 writes them.
		{`[error] 7#7: *1 connect() failed (111: Connection refused) while connecting to upstream` + streamCtx, prober.ReasonConnectionRefused},
		{`[error] 7#7: *1 upstream timed out (110: Connection timed out) while connecting to upstream` + streamCtx, prober.ReasonConnectTimeout},
		{`[error] 7#7: *1 SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream` + streamCtx, prober.ReasonProtocolMismatch},
		{`[error] 7#7: *7 recv() failed (111: Connection refused) while proxying and reading from upstream, udp client: 127.0.0.1, server: 127.0.0.1:5353, upstream: "127.0.0.1:53", bytes from/to client:4/0, bytes from/to upstream:0/4`, prober.ReasonConnectionRefused},
	}
	for _, tt := range tests {
		got, msg, ok := table.classify(tt.line)
		if !ok || got != tt.want {
			t.Errorf("classify(%q) = %q (via %q, matched=%v), want %q", tt.line, got, msg, ok, tt.want)
		}
	}
	// A silent UDP upstream: nginx's info line is no error (and no row).
	if _, msg, ok := table.classify(`[info] 7#7: *9 udp timed out, packets from/to client:1/0, bytes from/to client:4/0, bytes from/to upstream:0/4`); ok {
		t.Errorf("udp timed out matched %q", msg)
	}
	if _, msg, ok := table.classify(`[notice] 7#7: start worker processes`); ok {
		t.Errorf("a notice line matched %q", msg)
	}
}
