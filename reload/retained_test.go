package reload

import (
	"context"
	"testing"
)

// TestLastKeepsNoPerServerModel checks that after a load the manager keeps
// the target set and the configuration's other facts, but not the
// per-server model the targets were built from.
func TestLastKeepsNoPerServerModel(t *testing.T) {
	ctx := t.Context()
	conf := writeConf(t, t.TempDir(), `upstream app { server 127.0.0.1:1; server 127.0.0.1:2; }
server { location / { proxy_pass http://app; } location /x { proxy_pass http://$host; } }`)
	app := &countingApplier{}
	m := manager(t, ctx, conf, nil, app)
	if err := m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := m.Last()
	if last == nil || last.Nginx == nil || last.Set == nil {
		t.Fatalf("Last() = %+v", last)
	}
	if last.Nginx.Servers != nil {
		t.Errorf("Last().Nginx.Servers kept: %d entries", len(last.Nginx.Servers))
	}
	if len(last.Set.Targets) != 2 || app.targets() != 2 {
		t.Errorf("targets: kept %d, applied %d, want 2", len(last.Set.Targets), app.targets())
	}
	if len(last.Nginx.Files) != 1 || len(last.Nginx.Dynamic) != 1 || len(last.Files) == 0 {
		t.Errorf("other facts lost: files %v, dynamic %v, watched %v", last.Nginx.Files, last.Nginx.Dynamic, last.Files)
	}
}
