package nginxconf

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestLuaBlocks: *_by_lua_block bodies are delimited by Lua's lexical
// grammar, as lua-nginx-module does, not by counting braces outside
// quotes. The cases are those of nginx-go-crossplane issue 179 (escaped
// quotes, long brackets, line and long comments) and the ingress-nginx
// comment that made every ingress-nginx configuration fail to load.
func TestLuaBlocks(t *testing.T) {
	tests := []struct {
		name string
		lua  string // the body of content_by_lua_block { ... }
	}{
		{"apostrophe in a line comment", "\n    -- load all plugins that'll be used here\n    ngx.say(\"ok\")\n"},
		{"quote and brace in a line comment", "\n    -- a \" and a { here\n    ngx.say(1)\n"},
		{"escaped single quote", ` ngx.say('it\'s { here') `},
		{"escaped double quote", ` ngx.say("a \" } b") `},
		{"escaped backslash before the closing quote", ` ngx.say("a\\") local t = {} `},
		{"long string", " local s = [[ } ' \" ]] ngx.say(s) "},
		{"long string of level 2", " local s = [==[ ]] ]=] } ]==] ngx.say(s) "},
		{"long comment", "\n --[[ a comment with } and ' \n over lines ]] ngx.say(1)\n"},
		{"long comment of level 1", " --[=[ ]] } ]=] ngx.say(1) "},
		{"line comment that looks like a long one", " --[ } \n ngx.say(1) "},
		{"nested tables", " local t = { a = { b = '}' } } ngx.say(t.a.b) "},
		{"index that is not a long bracket", " local t = {1} t[ t[1] ] = 2 "},
		{"minus is not a comment", " local a = 2 - -1 local t = {} "},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			main := "/etc/nginx/nginx.conf"
			conf := "events {}\nhttp {\n  server {\n    location / {\n      content_by_lua_block {" + tt.lua + "}\n    }\n" +
				"    location /api { proxy_pass http://127.0.0.1:8080; }\n  }\n}\n"
			cfg, err := Load(main, LoadOptions{PageSize: 4096, FS: memFS{main: conf}})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(cfg.Servers) != 1 || cfg.Servers[0].Server != "127.0.0.1:8080" {
				t.Fatalf("servers = %+v, want the proxy_pass after the Lua block", cfg.Servers)
			}
			dirs, err := parseFile(context.Background(), main, []byte(conf))
			if err != nil {
				t.Fatal(err)
			}
			lua := dirs[1].Block[0].Block[0].Block[0]
			if lua.Directive != "content_by_lua_block" || len(lua.Args) != 1 || lua.Args[0] != tt.lua {
				t.Errorf("Lua block = %s %q, want the body verbatim %q", lua.Directive, lua.Args, tt.lua)
			}
		})
	}
}

// TestLuaBlockErrors: what lua-nginx-module refuses is refused, and a
// brace in a comment does not end the block (crossplane's own lexer
// accepted this configuration with a tree nginx would never build).
func TestLuaBlockErrors(t *testing.T) {
	tests := []struct {
		name, conf, want string
		line             int
	}{
		// The comment's brace is Lua's: the block ends on line 6, the
		// location and server on the next two, http never.
		{"brace in a comment does not close the block",
			"events {}\nhttp {\n server {\n  location / {\n   content_by_lua_block {\n    ngx.say(1) -- }\n  }\n }\n}\n",
			`unexpected end of file, expecting "}"`, 10},
		{"unterminated string",
			"events {}\nhttp {\n server {\n  location / {\n   content_by_lua_block { ngx.say('x) }\n  }\n }\n}\n",
			"unexpected end of file, expecting terminating characters for lua code block", 5},
		{"unterminated long string",
			"events {}\nhttp {\n server {\n  location / {\n   content_by_lua_block { local s = [==[ ]] ]=] }\n  }\n }\n}\n",
			"unexpected end of file, expecting terminating characters for lua code block", 5},
		{"no block",
			"events {}\nhttp {\n server {\n  location / {\n   content_by_lua_block ngx.say(1);\n  }\n }\n}\n",
			`expected "{" to start the lua block`, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			main := "/etc/nginx/nginx.conf"
			_, err := Load(main, LoadOptions{PageSize: 4096, FS: memFS{main: tt.conf}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want %q", err, tt.want)
			}
			if at := fmt.Sprintf("%s:%d:", main, tt.line); !strings.Contains(err.Error(), at) {
				t.Errorf("error %v is not at %s", err, at)
			}
		})
	}
}

// TestSetByLuaBlock: set_by_lua_block's variable comes before the code,
// with or without a space before the brace.
func TestSetByLuaBlock(t *testing.T) {
	for _, conf := range []string{
		"set_by_lua_block $x { return '}' }",
		"set_by_lua_block $x{ return '}' }",
		"set_by_lua_block\n  $x\n  # an nginx comment\n  { return '}' }",
	} {
		main := "/etc/nginx/nginx.conf"
		full := "events {}\nhttp { server { " + conf + "\n location / { proxy_pass http://127.0.0.1:1; } } }\n"
		dirs, err := parseFile(context.Background(), main, []byte(full))
		if err != nil {
			t.Fatalf("%q: %v", conf, err)
		}
		d := dirs[1].Block[0].Block[0]
		if d.Directive != "set_by_lua_block" || len(d.Args) != 2 || d.Args[0] != "$x" || d.Args[1] != " return '}' " {
			t.Errorf("%q: got %s %q", conf, d.Directive, d.Args)
		}
		if _, err := Load(main, LoadOptions{PageSize: 4096, FS: memFS{main: full}}); err != nil {
			t.Errorf("%q: Load: %v", conf, err)
		}
	}
}

// TestLuaErrorDoesNotLeak: after an error in a Lua block early in a large
// file, the lexer goroutines end (goleak in TestMain checks it).
func TestLuaErrorDoesNotLeak(t *testing.T) {
	var b strings.Builder
	b.WriteString("events {}\nhttp { server { location / { content_by_lua_block { ngx.say('x) } } }\n")
	for range 5000 {
		b.WriteString("server { location / { proxy_pass http://127.0.0.1:1; } }\n")
	}
	b.WriteString("}\n")
	main := "/etc/nginx/nginx.conf"
	if _, err := Load(main, LoadOptions{PageSize: 4096, FS: memFS{main: b.String()}}); err == nil {
		t.Fatal("Load succeeded")
	}
}

// TestParserPanicIsAnError: input that makes the parser library panic
// (`if ()`, found by FuzzLoad) fails the load instead of stopping the
// process, and the library's lexer goroutines end even when much of the
// file is left unread (goleak in TestMain).
func TestParserPanicIsAnError(t *testing.T) {
	var b strings.Builder
	b.WriteString("events {}\nhttp { server { if () { return 403; } }\n")
	for range 5000 {
		b.WriteString("server { location / { proxy_pass http://127.0.0.1:1; } }\n")
	}
	b.WriteString("}\n")
	main := "/etc/nginx/nginx.conf"
	_, err := Load(main, LoadOptions{PageSize: 4096, FS: memFS{main: b.String()}})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != main {
		t.Fatalf("Load error = %v, want a *ParseError in %s", err, main)
	}
	// nginx -t: `invalid condition ")" in /etc/nginx/nginx.conf:2`; the
	// parser library is never reached, so no goroutine of its is left
	// blocked behind the rest of the file.
	if pe.Line != 2 || pe.Msg != `invalid condition ")"` {
		t.Errorf("error at line %d: %q, want nginx's invalid condition \")\" at line 2", pe.Line, pe.Msg)
	}
}

// TestLuaAssigns: the Lua handlers of the rewrite and access phases may
// assign variables; their flags and other phases do not.
func TestLuaAssigns(t *testing.T) {
	for name, want := range map[string]bool{
		"rewrite_by_lua_block": true, "rewrite_by_lua_file": true, "rewrite_by_lua": true,
		"access_by_lua_block": true, "server_rewrite_by_lua_block": true,
		"rewrite_by_lua_no_postpone": false, "access_by_lua_no_postpone": false,
		"content_by_lua_block": false, "log_by_lua_block": false, "set_by_lua_block": false,
	} {
		if got := luaAssigns(name); got != want {
			t.Errorf("luaAssigns(%q) = %v, want %v", name, got, want)
		}
	}
}
