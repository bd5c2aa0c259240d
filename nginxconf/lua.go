package nginxconf

import (
	"strings"
	"sync"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// luaBlockDirectives are the *_by_lua_block directives of the http and
// stream Lua modules (lua-nginx-module, stream-lua-nginx-module): their
// block is Lua code, not nginx directives.
var luaBlockDirectives = []string{
	"init_by_lua_block",
	"init_worker_by_lua_block",
	"exit_worker_by_lua_block",
	"set_by_lua_block",
	"content_by_lua_block",
	"server_rewrite_by_lua_block",
	"rewrite_by_lua_block",
	"access_by_lua_block",
	"precontent_by_lua_block",
	"preread_by_lua_block",
	"header_filter_by_lua_block",
	"body_filter_by_lua_block",
	"log_by_lua_block",
	"balancer_by_lua_block",
	"ssl_client_hello_by_lua_block",
	"ssl_certificate_by_lua_block",
	"ssl_session_fetch_by_lua_block",
	"ssl_session_store_by_lua_block",
	"proxy_ssl_verify_by_lua_block",
	"proxy_ssl_certificate_by_lua_block",
}

// newLuaLexer returns a lexer for one parse, to be registered with
// crossplane for the *_by_lua_block directives (crossplane's extension
// point for custom lexers). It replaces crossplane's own Lua lexer, which
// counts braces outside quotes and so fails on an apostrophe in a comment
// ("-- load all plugins that'll be used here", in every ingress-nginx
// configuration), on long brackets and on escaped quotes
// (nginx-go-crossplane issue 179).
func newLuaLexer() (*luaBlockLexer, crossplane.RegisterLexer) {
	l := &luaBlockLexer{}
	return l, crossplane.LexWithLexer(l, luaBlockDirectives...)
}

// luaBlockLexer finds the end of a Lua block the way lua-nginx-module
// does (ngx_http_lua_conf_read_lua_token): it follows Lua's lexical
// grammar for what can hide a brace: short strings with backslash
// escapes, long strings [[ ]] and [==[ ]==] of any level, line comments
// (--) and long comments (--[[ ]], --[==[ ]==]). Braces outside them nest.
//
// The block's content (without the outer braces) becomes the directive's
// one argument, followed by ";", as crossplane's own Lua lexer emits it;
// set_by_lua_block's variable comes first.
//
// An error is kept aside (failure) rather than sent as a token: crossplane
// reads a directive's arguments without looking at a token's error, and
// would report "premature end of file" instead of the reason.
type luaBlockLexer struct {
	mu  sync.Mutex
	err *luaError
}

// luaError is the first error of a parse in a Lua block.
type luaError struct {
	msg  string
	line int
}

// failure returns the first error met in a Lua block, if any.
func (lx *luaBlockLexer) failure() *luaError {
	lx.mu.Lock()
	defer lx.mu.Unlock()
	return lx.err
}

// Lex implements crossplane.Lexer.
func (lx *luaBlockLexer) Lex(s *crossplane.SubScanner, directive string) <-chan crossplane.NgxToken {
	ch := make(chan crossplane.NgxToken)
	go func() {
		defer close(ch)
		l := &luaScan{lx: lx, s: s, out: ch, braceLine: s.Line()}
		l.run(directive)
	}()
	return ch
}

// luaScan is one run of the lexer over a block.
type luaScan struct {
	lx  *luaBlockLexer
	s   *crossplane.SubScanner
	out chan<- crossplane.NgxToken
	// braceLine is the line of the last "{" seen, where nginx reports
	// an unterminated block.
	braceLine int
	// pending holds characters read ahead and given back, last first;
	// they are already in body.
	pending []string
	// body collects the block's text as read.
	body strings.Builder
	// record is off until the opening brace, so that body is the
	// content only.
	record bool
}

// next returns the next character, from pending first.
func (l *luaScan) next() (string, bool) {
	if n := len(l.pending); n > 0 {
		c := l.pending[n-1]
		l.pending = l.pending[:n-1]
		return c, true
	}
	if !l.s.Scan() {
		return "", false
	}
	c := l.s.Text()
	if l.record {
		l.body.WriteString(c)
	}
	return c, true
}

// unread gives characters back, to be returned by next in order.
func (l *luaScan) unread(cs ...string) {
	for i := len(cs) - 1; i >= 0; i-- {
		l.pending = append(l.pending, cs[i])
	}
}

// fail records an error at the line of the last "{" and consumes the
// rest of the input, so that the parse ends at once (on an unexpected
// end of file, which parseFile replaces by this error).
func (l *luaScan) fail(msg string) {
	l.lx.mu.Lock()
	if l.lx.err == nil {
		l.lx.err = &luaError{msg: msg, line: l.braceLine}
	}
	l.lx.mu.Unlock()
	for l.s.Scan() {
	}
}

const luaEOF = "unexpected end of file, expecting terminating characters for lua code block"

func (l *luaScan) run(directive string) {
	if directive == "set_by_lua_block" {
		v, ok := l.word()
		if !ok {
			return
		}
		l.out <- crossplane.NgxToken{Value: v, Line: l.s.Line()}
	}
	if !l.open() {
		return
	}
	l.record = true
	depth := 1
	for {
		c, ok := l.next()
		if !ok {
			l.fail(luaEOF)
			return
		}
		switch c {
		case "{":
			depth++
			l.braceLine = l.s.Line()
		case "}":
			depth--
			if depth == 0 {
				body := strings.TrimSuffix(l.body.String(), "}")
				l.out <- crossplane.NgxToken{Value: body, Line: l.s.Line(), IsQuoted: true}
				l.out <- crossplane.NgxToken{Value: ";", Line: l.s.Line()}
				return
			}
		case `"`, "'":
			if !l.shortString(c) {
				l.fail(luaEOF)
				return
			}
		case "-":
			if !l.dash() {
				l.fail(luaEOF)
				return
			}
		case "[":
			if level, ok := l.longOpen(); ok && !l.longClose(level) {
				l.fail(luaEOF)
				return
			}
		}
	}
}

// word reads set_by_lua_block's variable: spaces, then a word ending at
// a space or at the block's "{" (given back).
func (l *luaScan) word() (string, bool) {
	var w strings.Builder
	for {
		c, ok := l.next()
		if !ok {
			l.fail(luaEOF)
			return "", false
		}
		switch {
		case isLuaSpace(c) && w.Len() == 0:
		case isLuaSpace(c):
			return w.String(), true
		case c == "{" && w.Len() > 0:
			l.unread(c)
			return w.String(), true
		case c == "{" || c == ";" || c == "}":
			l.fail(`invalid number of arguments in "set_by_lua_block" directive`)
			return "", false
		default:
			w.WriteString(c)
		}
	}
}

// open skips spaces and nginx comments up to the block's "{".
func (l *luaScan) open() bool {
	for {
		c, ok := l.next()
		if !ok {
			l.fail(luaEOF)
			return false
		}
		switch {
		case isLuaSpace(c):
		case c == "#":
			for {
				c, ok := l.next()
				if !ok {
					l.fail(luaEOF)
					return false
				}
				if c == "\n" {
					break
				}
			}
		case c == "{":
			l.braceLine = l.s.Line()
			return true
		default:
			l.fail(`expected "{" to start the lua block`)
			return false
		}
	}
}

// shortString reads a quoted string up to its closing quote; a backslash
// escapes the character after it (a quote, a backslash, a newline).
func (l *luaScan) shortString(quote string) bool {
	for {
		c, ok := l.next()
		if !ok {
			return false
		}
		switch c {
		case quote:
			return true
		case `\`:
			if _, ok := l.next(); !ok {
				return false
			}
		}
	}
}

// dash handles a "-" read in code: "--" starts a comment, long when a
// long bracket follows at once, else to the end of the line.
func (l *luaScan) dash() bool {
	c, ok := l.next()
	if !ok {
		return true // the caller's next read reports the end of file
	}
	if c != "-" {
		l.unread(c)
		return true
	}
	c, ok = l.next()
	if !ok {
		return true
	}
	if c == "[" {
		if level, ok := l.longOpen(); ok {
			return l.longClose(level)
		}
	} else {
		l.unread(c)
	}
	for {
		c, ok := l.next()
		if !ok {
			return true
		}
		if c == "\n" {
			return true
		}
	}
}

// longOpen is called after "[": it reads "="* "[" and returns the level
// (the number of "="). Anything else is given back: "[" was an index.
func (l *luaScan) longOpen() (int, bool) {
	var read []string
	level := 0
	for {
		c, ok := l.next()
		if !ok {
			l.unread(read...)
			return 0, false
		}
		read = append(read, c)
		switch c {
		case "=":
			level++
			continue
		case "[":
			return level, true
		}
		l.unread(read...)
		return 0, false
	}
}

// longClose reads up to the "]" "="*level "]" that closes a long
// bracket.
func (l *luaScan) longClose(level int) bool {
	for {
		c, ok := l.next()
		if !ok {
			return false
		}
		if c != "]" {
			continue
		}
		n := 0
		for {
			c, ok = l.next()
			if !ok {
				return false
			}
			if c != "=" {
				break
			}
			n++
		}
		if c == "]" && n == level {
			return true
		}
		if c == "]" {
			// It may start the closing bracket.
			l.unread(c)
		}
	}
}

func isLuaSpace(c string) bool {
	return c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\f" || c == "\v"
}
