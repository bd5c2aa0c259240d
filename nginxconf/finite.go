package nginxconf

import (
	"slices"
	"strings"
)

// This file finds the values a variable can take at a *_pass when every
// one of them is written in the configuration: `set` in the server, the
// location and its `if` blocks, and `map` or `split_clients` blocks whose
// values are all literal. A *_pass built from such variables has a finite
// set of candidate addresses, each of which is a target. Anything else
// (a request variable, a value built from one, a map with a regex capture,
// any variable where a Lua rewrite or access handler runs) is unknown and
// the *_pass stays dynamic. docs/configuration-model.md states the rule
// and its limits.

// maxCandidates bounds the addresses one *_pass may expand to; a larger
// product of choices stays dynamic.
const maxCandidates = 64

// valueSet is what a variable may hold at a point: a few literal values,
// or unknown.
type valueSet struct {
	vals    []string
	unknown bool
}

func known(v ...string) valueSet { return valueSet{vals: v} }

var unknownValue = valueSet{unknown: true}

func (a valueSet) union(b valueSet) valueSet {
	if a.unknown || b.unknown {
		return unknownValue
	}
	out := slices.Clone(a.vals)
	for _, v := range b.vals {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) > maxCandidates {
		return unknownValue
	}
	return valueSet{vals: out}
}

// varState maps a variable (lower case, without "$") to its values; a
// variable absent from it has its initial value (flow.initial).
type varState map[string]valueSet

func (s varState) clone() varState {
	out := make(varState, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// flow evaluates nginx's rewrite directives for the variable sets.
type flow struct {
	// defined are the variables of map and split_clients blocks whose
	// values are all literal; every other variable starts unknown.
	defined map[string]valueSet
	// httpLua is true when http{} holds a Lua rewrite or access
	// handler, which every location inherits.
	httpLua bool
	// servers caches what a server{} level yields, computed once per
	// server block rather than once per *_pass in it.
	servers map[*node]serverFlow
}

// serverFlow is the state after a server block's rewrite directives.
type serverFlow struct {
	st  varState
	out outcome
	lua bool
}

// newFlow reads the literal map and split_clients blocks of http{}.
func newFlow(httpNodes []*node) *flow {
	f := &flow{defined: map[string]valueSet{}, httpLua: hasLua(httpNodes), servers: map[*node]serverFlow{}}
	for _, n := range httpNodes {
		if !n.isBlk {
			continue
		}
		var dst string
		switch {
		case n.name == "map" && len(n.args) == 2:
			dst = n.args[1]
		case n.name == "split_clients" && len(n.args) == 2:
			dst = n.args[1]
		default:
			continue
		}
		name, ok := varArg(dst)
		if !ok {
			continue
		}
		f.defined[name] = mapValues(n)
	}
	return f
}

// varArg returns the name of a "$name" argument.
func varArg(a string) (string, bool) {
	if !strings.HasPrefix(a, "$") {
		return "", false
	}
	name, n := varName(a[1:])
	if n == 0 || n != len(a)-1 {
		return "", false
	}
	return strings.ToLower(name), true
}

// mapValues is the set of values of a map or split_clients block: every
// value must be a literal. A map without `default`, or a split_clients
// without `*`, also yields "" (the value of what no entry matches).
func mapValues(n *node) valueSet {
	vs := valueSet{}
	hasDefault := false
	for _, e := range n.block {
		if e.isBlk {
			return unknownValue
		}
		switch {
		case n.name == "map" && (e.name == "hostnames" || e.name == "volatile") && len(e.args) == 0:
			continue
		case e.name == "include":
			// Entries the loader lists but does not parse.
			return unknownValue
		case len(e.args) != 1:
			return unknownValue
		}
		if n.name == "map" && e.name == "default" || n.name == "split_clients" && e.name == "*" {
			hasDefault = true
		}
		v := e.args[0]
		if strings.Contains(v, "$") {
			return unknownValue
		}
		vs = vs.union(known(v))
		if vs.unknown {
			return vs
		}
	}
	if !hasDefault {
		vs = vs.union(known(""))
	}
	return vs
}

func (f *flow) initial(name string) valueSet {
	if v, ok := f.defined[name]; ok {
		return v
	}
	return unknownValue
}

func (f *flow) get(st varState, name string) valueSet {
	if v, ok := st[name]; ok {
		return v
	}
	return f.initial(name)
}

// hasLua reports whether a level holds a Lua rewrite or access handler.
func hasLua(nodes []*node) bool {
	for _, n := range nodes {
		if luaAssigns(n.name) {
			return true
		}
	}
	return false
}

// luaAssigns reports the Lua handlers that run before the content phase
// and so may assign the variables a *_pass reads (lua-nginx-module's
// rewrite and access phases).
func luaAssigns(directive string) bool {
	for _, p := range []string{"rewrite_by_lua", "access_by_lua", "server_rewrite_by_lua"} {
		// rewrite_by_lua_no_postpone and the like are flags.
		switch strings.TrimPrefix(directive, p) {
		case "", "_block", "_file":
			if strings.HasPrefix(directive, p) {
				return true
			}
		}
	}
	return false
}

// outcome is how a sequence of rewrite directives ends on one path.
type outcome int

const (
	goesOn  outcome = iota // every directive ran
	stopped                // break: later rewrite directives did not run
	ended                  // return or a redirect: the *_pass is not reached
)

// run evaluates rewrite directives in order from st. path lists the `if`
// blocks that enclose the *_pass, outermost first: they are taken; every
// other `if` may or may not be.
func (f *flow) run(nodes []*node, st varState, path []*node) (varState, outcome) {
	// maybe is set once an earlier `if` may have stopped the level
	// (break): from then on, a directive may not run.
	maybe := false
	for _, n := range nodes {
		if n.name == "if" && n.isBlk {
			if len(path) > 0 && path[0] == n {
				taken, out := f.run(n.block, st.clone(), path[1:])
				st = taken
				if out != goesOn {
					return st, out
				}
				continue
			}
			taken, out := f.run(n.block, st.clone(), nil)
			switch out {
			case ended:
				// That path never reaches the *_pass.
			case stopped:
				st = f.merge(st, taken)
				maybe = true
			default:
				st = f.merge(st, taken)
			}
			continue
		}
		if n.isBlk {
			continue
		}
		switch n.name {
		case "set":
			if len(n.args) != 2 {
				continue
			}
			name, ok := varArg(n.args[0])
			if !ok {
				continue
			}
			v := f.eval(n.args[1], st)
			if maybe {
				v = v.union(f.get(st, name))
			}
			st[name] = v
		case "break":
			if maybe {
				continue
			}
			return st, stopped
		case "return":
			if maybe {
				continue
			}
			return st, ended
		case "rewrite":
			// A rewrite applies only when its regex matches: with
			// `break` the level may stop there.
			if len(n.args) == 3 && n.args[2] == "break" {
				maybe = true
			}
		default:
			if name, ok := setsVariable(n); ok {
				st[name] = unknownValue
			}
		}
	}
	return st, goesOn
}

// merge is the state after an `if` that may or may not have been taken.
func (f *flow) merge(a, b varState) varState {
	out := a.clone()
	for k, v := range b {
		out[k] = f.get(a, k).union(v)
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			out[k] = v
		}
	}
	return out
}

// setsVariable reports directives of modules that assign a variable given
// as first argument (set_by_lua*, set-misc's set_*, auth_request_set,
// ...): its value is unknown.
func setsVariable(n *node) (string, bool) {
	if len(n.args) == 0 || !(strings.HasPrefix(n.name, "set_") || strings.HasSuffix(n.name, "_set")) {
		return "", false
	}
	return varArg(n.args[0])
}

// eval is the set of values of a `set` value: literal text and variables
// whose values are known.
func (f *flow) eval(v string, st varState) valueSet {
	if !strings.Contains(v, "$") {
		return known(v)
	}
	outs, ok := f.expand(v, st, false, false)
	if !ok {
		return unknownValue
	}
	return known(outs...)
}

// expand returns every value of s with its variables replaced by their
// known values. With keepUnknown, unknown variables stay as written
// (they may only make up a URI); otherwise one makes s unknown. With
// opaque, every variable is unknown.
func (f *flow) expand(s string, st varState, keepUnknown, opaque bool) ([]string, bool) {
	outs := []string{""}
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			break
		}
		lit := s[:i]
		name, n := varName(s[i+1:])
		var choices []string
		vs := f.get(st, strings.ToLower(name))
		if opaque {
			vs = unknownValue
		}
		switch {
		case n == 0:
			return nil, false
		case vs.unknown && keepUnknown:
			choices = []string{s[i : i+1+n]}
		case vs.unknown:
			return nil, false
		default:
			choices = vs.vals
		}
		next := make([]string, 0, len(outs)*len(choices))
		for _, o := range outs {
			for _, c := range choices {
				next = append(next, o+lit+c)
			}
		}
		if len(next) > maxCandidates {
			return nil, false
		}
		outs = next
		s = s[i+1+n:]
	}
	for i := range outs {
		outs[i] += s
	}
	return dedupe(outs), true
}

func dedupe(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// candidates returns the values the argument of a *_pass can take,
// following the rewrite directives of the server and of the location
// (those of an enclosing location are not inherited), the `if` blocks
// around the *_pass taken and the others either way, and the Lua blocks
// that may assign variables. Variables that stay unknown are left as
// written. ok is false when no value can be reached or there are too many.
func (f *flow) candidates(arg string, c wctx) ([]string, bool) {
	// Lua rewrite and access handlers run after the rewrite directives
	// and may assign any variable, from inline code or from the modules
	// it calls: with one in force, no variable is known.
	lua := f.httpLua
	st, out := varState{}, goesOn
	if c.serverNode != nil {
		sf, ok := f.servers[c.serverNode]
		if !ok {
			sf.st, sf.out = f.run(c.serverNode.block, varState{}, nil)
			sf.lua = hasLua(c.serverNode.block)
			f.servers[c.serverNode] = sf
		}
		st, out, lua = sf.st.clone(), sf.out, lua || sf.lua
	}
	if c.loc != nil {
		lua = lua || hasLua(c.loc.block)
		for _, n := range c.ifs {
			lua = lua || hasLua(n.block)
		}
	}
	if lua {
		return f.expand(arg, varState{}, true, true)
	}
	if out == goesOn && c.loc != nil {
		st, out = f.run(c.loc.block, st, c.ifs)
	}
	if out == ended {
		return nil, false
	}
	return f.expand(arg, st, true, false)
}
