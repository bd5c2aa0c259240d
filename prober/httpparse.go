package prober

// This file parses a response header the way nginx does: the status line as
// ngx_http_parse_status_line, each header line as ngx_http_parse_header_line
// (with underscores allowed, as for upstream responses), and the header
// checks of ngx_http_upstream.c that turn a response into "upstream sent
// invalid header" (duplicate or invalid Content-Length, unknown
// Transfer-Encoding, both at once) and of the CGI-style modules (an invalid
// "Status" header). What nginx accepts we accept: names with odd characters,
// a line without a colon, a repeated "HTTP/1.1 ..." line (IIS), bare LF
// line ends, a status text after "403.1".

type parseResult uint8

const (
	parseAgain    parseResult = iota // need more bytes
	parseDone                        // the header is complete
	parseInvalid                     // nginx: "upstream sent invalid header" and friends
	parseNoStatus                    // nginx: "upstream sent no valid HTTP/1.0 header"
)

// status-line states
const (
	slStart uint8 = iota
	slH
	slHT
	slHTT
	slHTTP
	slFirstMajor
	slMajor
	slFirstMinor
	slMinor
	slStatus
	slSpaceAfterStatus
	slStatusText
	slAlmostDone
)

// header-line states
const (
	hlStart uint8 = iota
	hlName
	hlSpaceBeforeValue
	hlValue
	hlSpaceAfterValue
	hlIgnoreLine
	hlAlmostDone
	hlHeaderAlmostDone
)

// respParser is an incremental parser over one contiguous, growing buffer:
// each call resumes at pos with the bytes added since.
type respParser struct {
	// cgi selects the CGI-style header (FastCGI, SCGI, uwsgi): no status
	// line, the status comes from a "Status" header.
	cgi        bool
	statusDone bool
	state      uint8
	pos        int

	major, minor int
	count        int
	code         int // from the status line

	nameStart, nameEnd   int
	valueStart, valueEnd int

	contentLength bool
	transferEnc   bool
	location      bool
	statusHeader  int // parsed "Status" value, 0 when absent
	statusInvalid bool

	// Why reports what nginx would have logged on parseInvalid.
	Why string
}

func (p *respParser) reset(cgi bool) { *p = respParser{cgi: cgi} }

// Status returns the response status once parse returned parseDone: the
// status line's code, else the CGI "Status" header, else 302 with a
// Location header, else 200 (ngx_http_fastcgi_process_header).
func (p *respParser) Status() int {
	if p.statusDone && !p.cgi {
		return p.code
	}
	if p.statusHeader != 0 {
		return p.statusHeader
	}
	if p.location {
		return 302
	}
	return 200
}

// parse continues over b, which must start with the bytes passed before.
func (p *respParser) parse(b []byte) parseResult {
	if !p.cgi && !p.statusDone {
		r := p.statusLine(b)
		if r != parseDone {
			return r
		}
		p.statusDone = true
	}
	return p.headers(b)
}

func (p *respParser) statusLine(b []byte) parseResult {
	for ; p.pos < len(b); p.pos++ {
		ch := b[p.pos]
		switch p.state {
		case slStart:
			if ch != 'H' {
				return parseNoStatus
			}
			p.state = slH
		case slH:
			if ch != 'T' {
				return parseNoStatus
			}
			p.state = slHT
		case slHT:
			if ch != 'T' {
				return parseNoStatus
			}
			p.state = slHTT
		case slHTT:
			if ch != 'P' {
				return parseNoStatus
			}
			p.state = slHTTP
		case slHTTP:
			if ch != '/' {
				return parseNoStatus
			}
			p.state = slFirstMajor
		case slFirstMajor:
			if ch < '1' || ch > '9' {
				return parseNoStatus
			}
			p.major = int(ch - '0')
			p.state = slMajor
		case slMajor:
			if ch == '.' {
				p.state = slFirstMinor
				break
			}
			if ch < '0' || ch > '9' || p.major > 99 {
				return parseNoStatus
			}
			p.major = p.major*10 + int(ch-'0')
		case slFirstMinor:
			if ch < '0' || ch > '9' {
				return parseNoStatus
			}
			p.minor = int(ch - '0')
			p.state = slMinor
		case slMinor:
			if ch == ' ' {
				p.state = slStatus
				break
			}
			if ch < '0' || ch > '9' || p.minor > 99 {
				return parseNoStatus
			}
			p.minor = p.minor*10 + int(ch-'0')
		case slStatus:
			if ch == ' ' {
				break
			}
			if ch < '0' || ch > '9' {
				return parseNoStatus
			}
			p.code = p.code*10 + int(ch-'0')
			p.count++
			if p.count == 3 {
				p.state = slSpaceAfterStatus
			}
		case slSpaceAfterStatus:
			switch ch {
			case ' ', '.': // IIS sends "403.1"
				p.state = slStatusText
			case '\r':
				p.state = slAlmostDone
			case '\n':
				return p.statusLineDone()
			default:
				return parseNoStatus
			}
		case slStatusText:
			switch ch {
			case '\r':
				p.state = slAlmostDone
			case '\n':
				return p.statusLineDone()
			}
		case slAlmostDone:
			if ch != '\n' {
				return parseNoStatus
			}
			return p.statusLineDone()
		}
	}
	return parseAgain
}

func (p *respParser) statusLineDone() parseResult {
	p.pos++
	p.state = hlStart
	return parseDone
}

func (p *respParser) headers(b []byte) parseResult {
	for ; p.pos < len(b); p.pos++ {
		ch := b[p.pos]
		switch p.state {
		case hlStart:
			p.nameStart = p.pos
			switch {
			case ch == '\r':
				p.state = hlHeaderAlmostDone
			case ch == '\n':
				p.pos++
				return p.headerDone()
			case ch <= 0x20 || ch == 0x7f || ch == ':':
				p.Why = "invalid header line"
				return parseInvalid
			default:
				p.state = hlName
			}
		case hlName:
			switch {
			case ch == ':':
				p.nameEnd = p.pos
				p.state = hlSpaceBeforeValue
			case ch == '\r' || ch == '\n':
				// A line without a colon: a name with an empty value.
				p.nameEnd, p.valueStart, p.valueEnd = p.pos, p.pos, p.pos
				if ch == '\n' {
					if r := p.lineDone(b); r != parseAgain {
						return r
					}
					break
				}
				p.state = hlAlmostDone
			case ch == '/' && p.pos-p.nameStart == 4 && string(b[p.nameStart:p.pos]) == "HTTP":
				// IIS may send a duplicate "HTTP/1.1 ..." line.
				p.state = hlIgnoreLine
			case ch <= 0x20 || ch == 0x7f:
				p.Why = "invalid header line"
				return parseInvalid
			}
		case hlSpaceBeforeValue:
			switch ch {
			case ' ', '\t':
			case '\r':
				p.valueStart, p.valueEnd = p.pos, p.pos
				p.state = hlAlmostDone
			case '\n':
				p.valueStart, p.valueEnd = p.pos, p.pos
				if r := p.lineDone(b); r != parseAgain {
					return r
				}
			case 0:
				p.Why = "NUL in header value"
				return parseInvalid
			default:
				p.valueStart = p.pos
				p.state = hlValue
			}
		case hlValue:
			switch ch {
			case ' ', '\t':
				p.valueEnd = p.pos
				p.state = hlSpaceAfterValue
			case '\r':
				p.valueEnd = p.pos
				p.state = hlAlmostDone
			case '\n':
				p.valueEnd = p.pos
				if r := p.lineDone(b); r != parseAgain {
					return r
				}
			case 0:
				p.Why = "NUL in header value"
				return parseInvalid
			}
		case hlSpaceAfterValue:
			switch ch {
			case ' ', '\t':
			case '\r':
				p.state = hlAlmostDone
			case '\n':
				if r := p.lineDone(b); r != parseAgain {
					return r
				}
			case 0:
				p.Why = "NUL in header value"
				return parseInvalid
			default:
				p.state = hlValue
			}
		case hlIgnoreLine:
			if ch == '\n' {
				p.state = hlStart
			}
		case hlAlmostDone:
			switch ch {
			case '\n':
				if r := p.lineDone(b); r != parseAgain {
					return r
				}
			case '\r':
			default:
				p.Why = "CR not followed by LF in header line"
				return parseInvalid
			}
		case hlHeaderAlmostDone:
			if ch != '\n' {
				p.Why = "CR not followed by LF at end of header"
				return parseInvalid
			}
			p.pos++
			return p.headerDone()
		}
	}
	return parseAgain
}

// lineDone applies nginx's checks to one complete header line. It returns
// parseAgain to go on with the next line.
func (p *respParser) lineDone(b []byte) parseResult {
	p.state = hlStart
	name := b[p.nameStart:p.nameEnd]
	value := b[p.valueStart:p.valueEnd]
	switch {
	case equalFold(name, "content-length"):
		if p.contentLength {
			p.Why = "duplicate header line: Content-Length"
			return parseInvalid
		}
		if p.transferEnc {
			p.Why = `"Content-Length" and "Transfer-Encoding" headers at the same time`
			return parseInvalid
		}
		if !isOffset(value) {
			p.Why = `invalid "Content-Length" header`
			return parseInvalid
		}
		p.contentLength = true
	case equalFold(name, "transfer-encoding"):
		if p.transferEnc {
			p.Why = "duplicate header line: Transfer-Encoding"
			return parseInvalid
		}
		if p.contentLength {
			p.Why = `"Content-Length" and "Transfer-Encoding" headers at the same time`
			return parseInvalid
		}
		if !equalFold(value, "chunked") {
			p.Why = `unknown "Transfer-Encoding"`
			return parseInvalid
		}
		p.transferEnc = true
	case equalFold(name, "location"):
		p.location = true
	case p.cgi && !p.statusDone && equalFold(name, "status"):
		// ngx_atoi(value, 3): the first three bytes must be digits.
		if len(value) < 3 || !isDigit(value[0]) || !isDigit(value[1]) || !isDigit(value[2]) {
			p.statusInvalid = true
		} else {
			p.statusHeader = int(value[0]-'0')*100 + int(value[1]-'0')*10 + int(value[2]-'0')
		}
	}
	return parseAgain
}

func (p *respParser) headerDone() parseResult {
	if p.cgi && !p.statusDone && p.statusInvalid {
		p.Why = "invalid status"
		return parseInvalid
	}
	return parseDone
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isOffset mirrors ngx_atoof: one or more digits, no sign, no overflow of
// a 63-bit offset.
func isOffset(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	var n uint64
	for _, c := range v {
		if !isDigit(c) {
			return false
		}
		d := uint64(c - '0')
		if n > (1<<63-1-d)/10 {
			return false
		}
		n = n*10 + d
	}
	return true
}

// equalFold compares b with the lower-case ASCII string s, ignoring case,
// without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
