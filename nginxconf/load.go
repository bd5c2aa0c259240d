package nginxconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

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
// first context).
type loader struct {
	fs       FS
	confDir  string
	files    []string
	parsed   map[string][]*node
	data     map[string][]byte
	inFlight map[string]bool
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
// the file and line.
func Load(path string, opts LoadOptions) (*Config, error) {
	fsys := opts.FS
	if fsys == nil {
		fsys = osFS{}
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
		fs:       fsys,
		confDir:  filepath.Dir(path),
		parsed:   map[string][]*node{},
		data:     map[string][]byte{},
		inFlight: map[string]bool{},
	}
	if _, err := l.read(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("nginxconf: %w: %w", ErrNotFound, err)
		}
		return nil, fmt.Errorf("nginxconf: %w", err)
	}
	root, err := l.expand(path)
	if err != nil {
		return nil, err
	}
	w := newWalker(l.confDir, pageSize)
	cfg, err := w.run(root)
	if err != nil {
		return nil, err
	}
	cfg.Files = l.files
	return cfg, nil
}

// read returns a file's content, reading it at most once.
func (l *loader) read(name string) ([]byte, error) {
	if b, ok := l.data[name]; ok {
		return b, nil
	}
	b, err := l.fs.ReadFile(name)
	if err != nil {
		return nil, err
	}
	l.data[name] = b
	l.files = append(l.files, name)
	return b, nil
}

// expand parses name and splices in its includes, recursively.
func (l *loader) expand(name string) ([]*node, error) {
	if nodes, ok := l.parsed[name]; ok {
		return nodes, nil
	}
	data, err := l.read(name)
	if err != nil {
		return nil, err
	}
	dirs, err := parseFile(name, data)
	if err != nil {
		return nil, err
	}
	l.inFlight[name] = true
	nodes, err := l.convert(name, dirs, false)
	delete(l.inFlight, name)
	if err != nil {
		return nil, err
	}
	l.parsed[name] = nodes
	return nodes, nil
}

func (l *loader) convert(file string, dirs crossplane.Directives, inMap bool) ([]*node, error) {
	out := make([]*node, 0, len(dirs))
	for _, d := range dirs {
		if d.IsComment() {
			continue
		}
		if d.Directive == "include" && !d.IsBlock() {
			n := &node{name: d.Directive, args: d.Args, file: file, line: d.Line}
			inc, err := l.include(n, inMap)
			if err != nil {
				return nil, err
			}
			out = append(out, inc...)
			continue
		}
		n := &node{name: d.Directive, args: d.Args, file: file, line: d.Line, isBlk: d.IsBlock()}
		if d.IsBlock() {
			blk, err := l.convert(file, d.Block, inMap || mapBodies[d.Directive])
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
// exist.
func (l *loader) include(n *node, inMap bool) ([]*node, error) {
	if len(n.args) != 1 {
		return nil, n.errorf(`invalid number of arguments in "include" directive`)
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
	} else {
		names = []string{pattern}
	}
	var out []*node
	for _, name := range names {
		if l.inFlight[name] {
			return nil, n.errorf("include cycle: %q includes itself", name)
		}
		if inMap {
			// Data of a map-like block: list the file, do not parse it.
			if _, err := l.read(name); err != nil {
				return nil, &ParseError{File: n.file, Line: n.line, Err: err,
					Msg: fmt.Sprintf("open() %q failed: %v", name, err)}
			}
			continue
		}
		if _, err := l.read(name); err != nil {
			return nil, &ParseError{File: n.file, Line: n.line, Err: err,
				Msg: fmt.Sprintf("open() %q failed: %v", name, err)}
		}
		nodes, err := l.expand(name)
		if err != nil {
			return nil, err
		}
		out = append(out, nodes...)
	}
	return out, nil
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

// luaLexer tokenizes *_by_lua_block bodies so that braces inside Lua code
// do not upset the parser.
var luaLexer = (&crossplane.Lua{}).RegisterLexer()

// parseFile parses one file with crossplane. Includes are not followed
// (SingleFile): the loader does that itself, through the FS. The content
// is already in memory, so crossplane holds no file open. Directive
// checks are off because nginx modules crossplane does not know about
// (headers-more, lua, njs, ...) must not fail the load, and because an
// included file is parsed without knowing its context.
func parseFile(name string, data []byte) (crossplane.Directives, error) {
	payload, err := crossplane.Parse(name, &crossplane.ParseOptions{
		SingleFile:                true,
		SkipDirectiveContextCheck: true,
		SkipDirectiveArgsCheck:    true,
		Open: func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		},
		LexOptions: crossplane.LexOptions{Lexers: []crossplane.RegisterLexer{luaLexer}},
	})
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
