package nginxconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// FS reads configuration files and expands include globs. Load uses the
// operating system when LoadOptions.FS is nil; tests pass an in-memory FS.
type FS interface {
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

// LoadOptions control Load. The zero value reads the operating system's
// files and uses the machine's page size.
type LoadOptions struct {
	// FS reads files; nil means the operating system.
	FS FS
	// Prefix is nginx's -p prefix. As in nginx it only serves to make a
	// relative main file path absolute (ngx_process_options): the conf
	// prefix, against which include, proxy_ssl_certificate and the like
	// are resolved, is always the directory of the main file.
	Prefix string
	// PageSize is the default *_buffer_size (one memory page in nginx);
	// 0 means os.Getpagesize().
	PageSize int

	// Bounds of the configuration tree (docs/configuration.md); 0 means
	// the Default* constant. A load that would exceed one fails with a
	// *ParseError wrapping ErrLimitExceeded.

	// MaxFileBytes bounds the size of one file.
	MaxFileBytes int64
	// MaxTotalBytes bounds the bytes parsed, a file counting once per
	// inclusion.
	MaxTotalBytes int64
	// MaxFiles bounds the number of distinct files read.
	MaxFiles int
	// MaxInclusions bounds the number of file inclusions, a file counting
	// once per inclusion (the main file counts as one).
	MaxInclusions int
	// MaxDirectives bounds the number of directives parsed, counted as
	// the ';' and '{' of each file, a file counting once per inclusion.
	MaxDirectives int
	// MaxIncludeDepth bounds the nesting of includes.
	MaxIncludeDepth int
}

// ErrNotFound is returned (wrapped) by Load when the main configuration
// file does not exist.
var ErrNotFound = errors.New("main configuration file not found")

// ParseError is a problem in the configuration, located at File:Line.
// Its message reads like nginx's own: "nginxconf: FILE:LINE: MESSAGE".
type ParseError struct {
	File string
	Line int
	Msg  string
	// Err is the underlying error, if any (an fs error for a missing
	// include, a crossplane error for a syntax error).
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("nginxconf: %s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// osFS reads the operating system's files, regular files only and at
// most maxFile bytes each (readRegular).
type osFS struct{ maxFile int64 }

func (o osFS) ReadFile(name string) ([]byte, error) { return readRegular(name, o.maxFile) }
func (osFS) Glob(pattern string) ([]string, error)  { return filepath.Glob(pattern) }

// node is one directive of the configuration after include expansion.
type node struct {
	name  string
	args  []string
	file  string
	line  int
	block []*node // nil for a simple directive
	isBlk bool
}

func (n *node) source() string { return fmt.Sprintf("%s:%d", n.file, n.line) }

func (n *node) errorf(format string, a ...any) *ParseError {
	return &ParseError{File: n.file, Line: n.line, Msg: fmt.Sprintf(format, a...)}
}

// loader reads files and expands includes. Each file is read and parsed
// once; its directives are then spliced in at every include that names
// it, so that a file included from two contexts is seen in both (nginx
// parses it twice; crossplane's own include handling would keep only the
// first context). What nginx would parse, repeats included, is counted
// against the limits, so that a fan-out of includes costs what it would
// cost nginx, not what the cache makes it cost here.
type loader struct {
	ctx      context.Context
	fs       FS
	lim      limits
	confDir  string
	files    []string
	globDirs []string
	parsed   map[string]expansion
	data     map[string][]byte
	inFlight map[string]bool
	// used is what the load has parsed so far, repeats included.
	used usage
	// steps counts directives between context checks.
	steps int
}

// expansion is a file's directives with its includes spliced in, and what
// its includes cost: the inclusions and bytes below it and how deep they
// nest, added again each time the file is included.
type expansion struct {
	nodes []*node
	below usage
	depth int
}

// mapBodies are blocks whose content is data, not directives: an include
// inside them is read (so that it is listed in Files) but not parsed.
var mapBodies = map[string]bool{
	"map": true, "geo": true, "split_clients": true, "types": true,
	"charset_map": true, "match": true, "geoip2": true,
}

// Load reads the nginx configuration whose main file is path, follows its
// includes and returns the upstream servers nginx would talk to.
//
// A missing main file gives an error wrapping ErrNotFound. Syntax errors
// and configurations nginx itself would reject give a *ParseError naming
// the file and line. A tree exceeding the LoadOptions limits gives a
// *ParseError wrapping ErrLimitExceeded; a file that is not a regular
// file (a FIFO, a device, a socket) an error wrapping ErrNotRegular.
func Load(path string, opts LoadOptions) (*Config, error) {
	return LoadContext(context.Background(), path, opts)
}

// LoadContext is Load, stopping early with an error wrapping ctx.Err()
// when ctx is done: the context is checked between files and directives.
func LoadContext(ctx context.Context, path string, opts LoadOptions) (*Config, error) {
	lim := opts.limits()
	fsys := opts.FS
	if fsys == nil {
		fsys = osFS{maxFile: lim.fileBytes}
	}
	if opts.Prefix != "" && !filepath.IsAbs(path) {
		path = filepath.Join(opts.Prefix, path)
	}
	path = filepath.Clean(path)
	pageSize := opts.PageSize
	if pageSize <= 0 {
		pageSize = os.Getpagesize()
	}

	l := &loader{
		ctx:      ctx,
		fs:       fsys,
		lim:      lim,
		confDir:  filepath.Dir(path),
		parsed:   map[string]expansion{},
		data:     map[string][]byte{},
		inFlight: map[string]bool{},
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nginxconf: load of %s stopped: %w", path, err)
	}
	data, err := l.read(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("nginxconf: %w: %w", ErrNotFound, err)
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			return nil, err
		}
		if errors.Is(err, ErrNotRegular) || errors.Is(err, ErrLimitExceeded) {
			return nil, &ParseError{File: path, Line: 0, Msg: err.Error(), Err: err}
		}
		return nil, fmt.Errorf("nginxconf: %w", err)
	}
	l.used = usage{inclusions: 1, directives: statements(data), bytes: int64(len(data))}
	if err := l.checkTotals(path, 0); err != nil {
		return nil, err
	}
	root, err := l.expand(path, 0)
	if err != nil {
		return nil, err
	}
	w := newWalker(ctx, l.confDir, pageSize)
	w.fs = fsys
	w.prefix = opts.Prefix
	if w.prefix == "" {
		w.prefix = l.confDir
	}
	cfg, err := w.run(root.nodes)
	if err != nil {
		return nil, err
	}
	// After the walk, as nginx checks it after parsing the whole tree:
	// an error inside http{} is reported first, as nginx reports it.
	if err := checkEvents(root.nodes, path, data); err != nil {
		return nil, err
	}
	cfg.Files = l.files
	cfg.GlobDirs = l.globDirs
	return cfg, nil
}

// checkEvents refuses a configuration without exactly one events{} block
// in the main context, as nginx does (ngx_events_block,
// ngx_event_init_conf). Besides matching nginx, this is what makes a
// truncated or half-written nginx.conf a failed load rather than an empty
// but valid one. nginx names no position for a missing block; the end of
// the main file is where it noticed.
func checkEvents(root []*node, mainFile string, mainData []byte) error {
	var seen bool
	for _, n := range root {
		if n.name != "events" {
			continue
		}
		if seen {
			return n.errorf(`"events" directive is duplicate`)
		}
		seen = true
	}
	if !seen {
		return &ParseError{File: mainFile, Line: bytes.Count(mainData, []byte("\n")) + 1,
			Msg: `no "events" section in configuration`}
	}
	return nil
}

// read returns a file's content, reading it at most once.
func (l *loader) read(name string) ([]byte, error) {
	if b, ok := l.data[name]; ok {
		return b, nil
	}
	if len(l.files) >= l.lim.files {
		return nil, fmt.Errorf("%q would be file %d: %w (at most %d distinct files)",
			name, len(l.files)+1, ErrLimitExceeded, l.lim.files)
	}
	b, err := l.fs.ReadFile(name)
	if err != nil {
		return nil, err
	}
	// An FS other than the OS's is read whole first: it is in memory
	// already, so only the result is bounded.
	if int64(len(b)) > l.lim.fileBytes {
		return nil, &tooLargeError{name: name, limit: l.lim.fileBytes}
	}
	l.data[name] = b
	l.files = append(l.files, name)
	return b, nil
}

// checkTotals enforces the limits on what the load has parsed so far,
// blaming file:line (the include directive that crossed the bound).
func (l *loader) checkTotals(file string, line int) error {
	if l.used.inclusions > l.lim.inclusions {
		return limitError(file, line, "more than %d file inclusions (a file included n times counts n times)",
			l.lim.inclusions)
	}
	if l.used.directives > l.lim.directives {
		return limitError(file, line, "more than %d directives (a file included n times counts n times)",
			l.lim.directives)
	}
	if l.used.bytes > l.lim.totalBytes {
		return limitError(file, line, "more than %d bytes of configuration to parse (a file included n times counts n times)",
			l.lim.totalBytes)
	}
	return nil
}

// tick checks the context every few hundred directives: often enough that
// a cancelled load stops within milliseconds, rarely enough to cost
// nothing.
func (l *loader) tick() error {
	l.steps++
	if l.steps%256 != 0 {
		return nil
	}
	if err := l.ctx.Err(); err != nil {
		return fmt.Errorf("nginxconf: load stopped: %w", err)
	}
	return nil
}

// expand parses name, included at depth (the main file is at 0), and
// splices in its includes, recursively.
func (l *loader) expand(name string, depth int) (expansion, error) {
	if e, ok := l.parsed[name]; ok {
		return e, nil
	}
	if err := l.ctx.Err(); err != nil {
		return expansion{}, fmt.Errorf("nginxconf: load stopped: %w", err)
	}
	data, err := l.read(name)
	if err != nil {
		return expansion{}, err
	}
	dirs, err := parseFile(l.ctx, name, data)
	if err != nil {
		if cerr := l.ctx.Err(); cerr != nil {
			return expansion{}, fmt.Errorf("nginxconf: load stopped: %w", cerr)
		}
		return expansion{}, err
	}
	before := l.used
	l.inFlight[name] = true
	maxDepth := depth
	nodes, err := l.convert(name, dirs, false, depth, &maxDepth)
	delete(l.inFlight, name)
	if err != nil {
		return expansion{}, err
	}
	e := expansion{
		nodes: nodes,
		below: usage{
			inclusions: l.used.inclusions - before.inclusions,
			directives: l.used.directives - before.directives,
			bytes:      l.used.bytes - before.bytes,
		},
		depth: maxDepth - depth,
	}
	l.parsed[name] = e
	return e, nil
}

// convert turns crossplane's directives of file (included at depth) into
// nodes, expanding includes; maxDepth records the deepest include below.
func (l *loader) convert(file string, dirs crossplane.Directives, inMap bool, depth int, maxDepth *int) ([]*node, error) {
	out := make([]*node, 0, len(dirs))
	for _, d := range dirs {
		if err := l.tick(); err != nil {
			return nil, err
		}
		if d.IsComment() {
			continue
		}
		if d.Directive == "include" && !d.IsBlock() {
			n := &node{name: d.Directive, args: d.Args, file: file, line: d.Line}
			inc, err := l.include(n, inMap, depth, maxDepth)
			if err != nil {
				return nil, err
			}
			if inMap {
				// The data is not parsed; the include stays, so that
				// a reader of the block knows it has not seen it all
				// (finite.go).
				out = append(out, n)
			}
			out = append(out, inc...)
			continue
		}
		n := &node{name: d.Directive, args: d.Args, file: file, line: d.Line, isBlk: d.IsBlock()}
		if d.IsBlock() {
			blk, err := l.convert(file, d.Block, inMap || mapBodies[d.Directive], depth, maxDepth)
			if err != nil {
				return nil, err
			}
			n.block = blk
		}
		out = append(out, n)
	}
	return out, nil
}

// include resolves an include directive the way ngx_conf_include does:
// relative to the conf prefix, a glob may match nothing, a plain name must
// exist. The included files are at depth+1.
func (l *loader) include(n *node, inMap bool, depth int, maxDepth *int) ([]*node, error) {
	if len(n.args) != 1 {
		return nil, n.errorf(`invalid number of arguments in "include" directive`)
	}
	if depth+1 > l.lim.depth {
		return nil, limitError(n.file, n.line, "includes nested more than %d deep", l.lim.depth)
	}
	pattern := n.args[0]
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(l.confDir, pattern)
	}
	var names []string
	if strings.ContainsAny(pattern, "*?[") {
		matches, err := l.fs.Glob(pattern)
		if err != nil {
			return nil, &ParseError{File: n.file, Line: n.line, Err: err,
				Msg: fmt.Sprintf("glob %q failed: %v", pattern, err)}
		}
		names = globFilter(pattern, matches)
		if d := filepath.Dir(pattern); !strings.ContainsAny(d, "*?[") && !slices.Contains(l.globDirs, d) {
			l.globDirs = append(l.globDirs, d)
		}
	} else {
		names = []string{pattern}
	}
	var out []*node
	for _, name := range names {
		if err := l.ctx.Err(); err != nil {
			return nil, fmt.Errorf("nginxconf: load stopped: %w", err)
		}
		if l.inFlight[name] {
			return nil, n.errorf("include cycle: %q includes itself", name)
		}
		data, err := l.read(name)
		if err != nil {
			return nil, includeError(n, name, err)
		}
		l.used.inclusions++
		l.used.directives += statements(data)
		l.used.bytes += int64(len(data))
		if err := l.checkTotals(n.file, n.line); err != nil {
			return nil, err
		}
		*maxDepth = max(*maxDepth, depth+1)
		if inMap {
			// Data of a map-like block: list the file, do not parse it.
			continue
		}
		e, cached := l.parsed[name]
		if cached {
			// nginx would parse it again, with its includes: count them.
			l.used.inclusions += e.below.inclusions
			l.used.directives += e.below.directives
			l.used.bytes += e.below.bytes
			if err := l.checkTotals(n.file, n.line); err != nil {
				return nil, err
			}
			if depth+1+e.depth > l.lim.depth {
				return nil, limitError(n.file, n.line, "includes nested more than %d deep", l.lim.depth)
			}
		} else if e, err = l.expand(name, depth+1); err != nil {
			return nil, err
		}
		*maxDepth = max(*maxDepth, depth+1+e.depth)
		out = append(out, e.nodes...)
	}
	return out, nil
}

// includeError locates a failure to read an included file at its include
// directive.
func includeError(n *node, name string, err error) *ParseError {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe
	}
	msg := fmt.Sprintf("open() %q failed: %v", name, err)
	if errors.Is(err, ErrNotRegular) || errors.Is(err, ErrLimitExceeded) {
		msg = err.Error()
	}
	return &ParseError{File: n.file, Line: n.line, Msg: msg, Err: err}
}

// globFilter sorts matches in byte order, as glob(3) does in the C locale
// nginx runs in, and drops names whose components start with a dot where
// the pattern component does not: glob(3) never lets a wildcard match a
// leading dot, Go's filepath.Glob does (editor swap files such as
// ".app.conf.swp" would otherwise be loaded).
func globFilter(pattern string, matches []string) []string {
	pc := strings.Split(filepath.ToSlash(pattern), "/")
	out := matches[:0:0]
	for _, m := range matches {
		mc := strings.Split(filepath.ToSlash(m), "/")
		ok := true
		if len(mc) == len(pc) {
			for i := range mc {
				if strings.HasPrefix(mc[i], ".") && !strings.HasPrefix(pc[i], ".") {
					ok = false
					break
				}
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// parseFile parses one file with crossplane. Includes are not followed
// (SingleFile): the loader does that itself, through the FS. The content
// is already in memory, so crossplane holds no file open. Directive
// checks are off because nginx modules crossplane does not know about
// (headers-more, lua, njs, ...) must not fail the load, and because an
// included file is parsed without knowing its context. The content is
// read through ctx, so that parsing a large file stops when ctx is done.
func parseFile(ctx context.Context, name string, data []byte) (dirs crossplane.Directives, err error) {
	// crossplane panics on some malformed input (`if () {}` slices out
	// of range in prepareIfArgs): a broken file must fail its load, not
	// stop the exporter. Cancelling the reader then ends crossplane's
	// lexer goroutines, which nobody reads from any more.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			dirs, err = nil, &ParseError{File: name, Msg: fmt.Sprintf("the configuration parser failed: %v", r)}
		}
	}()
	// The panic above would leave crossplane's lexer goroutine blocked on
	// a full token channel whenever much of the file remains (a race with
	// the cancelled reader): refuse its one known cause first, as nginx
	// refuses it.
	if line := emptyIfCondition(data); line > 0 {
		return nil, &ParseError{File: name, Line: line, Msg: `invalid condition ")"`}
	}
	lua, luaLexer := newLuaLexer()
	payload, err := crossplane.Parse(name, &crossplane.ParseOptions{
		SingleFile:                true,
		SkipDirectiveContextCheck: true,
		SkipDirectiveArgsCheck:    true,
		Open: func(string) (io.ReadCloser, error) {
			return io.NopCloser(ctxReader{ctx, bytes.NewReader(data)}), nil
		},
		LexOptions: crossplane.LexOptions{Lexers: []crossplane.RegisterLexer{luaLexer}},
	})
	// A cancelled read looks like the end of the file to the parser: the
	// partial tree must never be judged (or loaded) as the configuration.
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("nginxconf: load stopped: %w", cerr)
	}
	// An error in a Lua block ends the parse: it is the cause of
	// whatever crossplane reports.
	if e := lua.failure(); e != nil {
		return nil, &ParseError{File: name, Line: e.line, Msg: e.msg}
	}
	if err != nil {
		return nil, &ParseError{File: name, Msg: err.Error(), Err: err}
	}
	if len(payload.Errors) > 0 {
		pe := payload.Errors[0]
		line := 0
		if pe.Line != nil {
			line = *pe.Line
		}
		msg := pe.Error.Error()
		var cpe *crossplane.ParseError
		if errors.As(pe.Error, &cpe) {
			msg = cpe.What
			if line == 0 && cpe.Line != nil {
				line = *cpe.Line
			}
		}
		file := pe.File
		if file == "" {
			file = name
		}
		return nil, &ParseError{File: file, Line: line, Msg: msg, Err: pe.Error}
	}
	if len(payload.Config) == 0 {
		return nil, nil
	}
	return payload.Config[0].Parsed, nil
}

// ctxReader fails its reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// emptyIfRE matches an `if` directive whose condition is empty, "()":
// crossplane v0.4.89 slices out of range on it (prepareIfArgs).
var emptyIfRE = regexp.MustCompile(`(?m)(?:^|[;{}])[ \t]*if[ \t]*\([ \t]*\)`)

// emptyIfCondition returns the line of the first `if ()` at the start of a
// directive, 0 when there is none. nginx says `invalid condition ")"`.
func emptyIfCondition(data []byte) int {
	loc := emptyIfRE.FindIndex(data)
	if loc == nil {
		return 0
	}
	return 1 + bytes.Count(data[:loc[1]], []byte("\n"))
}
