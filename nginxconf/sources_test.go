package nginxconf

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"
)

// The servers of one upstream block share the position of a *_pass that
// uses it, and a server used by a second *_pass gets both positions
// without writing into the others' list.
func TestSourcesSharedPerPass(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nginx.conf")
	conf := `events {}
http {
    upstream app { server 127.0.0.1:1; server 127.0.0.1:2; server 127.0.0.1:3; }
    upstream one { server 127.0.0.1:2; }
    server {
        listen 127.0.0.1:8080;
        location /a { proxy_pass http://app; }
        location /b { proxy_pass http://app; }
        location /c { proxy_pass http://one; }
    }
}
`
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, path, LoadOptions{})
	a, b := path+":7", path+":8"
	var first []string
	for _, s := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
		tg := findTarget(t, cfg, "app", s, "http")
		if !slices.Equal(tg.Sources, []string{a, b}) {
			t.Errorf("%s: sources %v, want %v", s, tg.Sources, []string{a, b})
		}
		if first == nil {
			first = tg.Sources
		} else if unsafe.StringData(tg.Sources[0]) != unsafe.StringData(first[0]) {
			t.Errorf("%s: a copy of the position, not the shared string", s)
		}
	}
	if tg := findTarget(t, cfg, "one", "127.0.0.1:2", "http"); !slices.Equal(tg.Sources, []string{path + ":9"}) {
		t.Errorf("one: sources %v", tg.Sources)
	}
}
