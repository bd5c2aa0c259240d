package discovery

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestDynamicReasonLogged: a *_pass to an upstream balanced by Lua is not
// probed at its placeholder; the log says why, with both positions.
func TestDynamicReasonLogged(t *testing.T) {
	conf := writeConf(t, `
events {}
http {
	upstream upstream_balancer {
		server 0.0.0.1; # placeholder
		balancer_by_lua_block {
			-- balance what's configured at run time
			balancer.balance()
		}
	}
	server {
		location / { proxy_pass http://upstream_balancer; }
		location /static { proxy_pass http://127.0.0.1:8181; }
	}
}`)
	var logs bytes.Buffer
	loaded, err := Load(context.Background(), Options{NginxConfig: conf,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Set.Probed != 1 || loaded.Set.Dynamic != 1 {
		t.Errorf("probed %d dynamic %d, want 1 and 1", loaded.Set.Probed, loaded.Set.Dynamic)
	}
	for _, tg := range loaded.Set.Targets {
		if strings.Contains(tg.Server, "0.0.0.1") {
			t.Errorf("the placeholder is a target: %+v", tg)
		}
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "upstream_balancer") {
			line = l
		}
	}
	for _, want := range []string{"not probing", "balanced by Lua", conf + ":6", conf + ":12"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
}
