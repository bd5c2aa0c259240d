package nginxconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const benchUpstreams = 10000

// upstreamBlock is upstream block i with two servers and the server{} that
// uses it.
func upstreamBlock(b *strings.Builder, i int) {
	fmt.Fprintf(b, "upstream app%d {\n    server 10.%d.%d.1:8080 weight=2 max_fails=3 fail_timeout=5s;\n    server 10.%d.%d.2:8080 backup;\n}\n",
		i, i/256%256, i%256, i/256%256, i%256)
	fmt.Fprintf(b, "server {\n    server_name app%d.example;\n    location / {\n        proxy_read_timeout 5s;\n        proxy_pass http://app%d;\n    }\n}\n", i, i)
}

// oneFileTree is a configuration with benchUpstreams upstream blocks in
// the main file.
func oneFileTree() memFS {
	var b strings.Builder
	b.WriteString("events {}\nhttp {\n    proxy_connect_timeout 2s;\n")
	for i := range benchUpstreams {
		upstreamBlock(&b, i)
	}
	b.WriteString("}\n")
	return memFS{"/etc/nginx/nginx.conf": b.String()}
}

// manyFilesTree spreads the same blocks over 1,000 included files.
func manyFilesTree() memFS {
	const files = 1000
	m := memFS{"/etc/nginx/nginx.conf": "events {}\nhttp {\n    proxy_connect_timeout 2s;\n    include conf.d/*.conf;\n}\n"}
	per := benchUpstreams / files
	for f := range files {
		var b strings.Builder
		for i := f * per; i < (f+1)*per; i++ {
			upstreamBlock(&b, i)
		}
		m[fmt.Sprintf("/etc/nginx/conf.d/site%04d.conf", f)] = b.String()
	}
	return m
}

// writeTree copies a memFS below dir and returns the main file's path.
func writeTree(b *testing.B, m memFS, dir string) string {
	b.Helper()
	for name, content := range m {
		p := filepath.Join(dir, strings.TrimPrefix(name, "/etc/nginx/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return filepath.Join(dir, "nginx.conf")
}

func BenchmarkLoad(b *testing.B) {
	trees := []struct {
		name string
		fs   memFS
	}{
		{"one-file", oneFileTree()},
		{"1000-files", manyFilesTree()},
	}
	for _, tree := range trees {
		b.Run(tree.name+"/memfs", func(b *testing.B) {
			benchLoad(b, "/etc/nginx/nginx.conf", LoadOptions{FS: tree.fs, PageSize: 4096})
		})
		b.Run(tree.name+"/disk", func(b *testing.B) {
			main := writeTree(b, tree.fs, b.TempDir())
			benchLoad(b, main, LoadOptions{PageSize: 4096})
		})
	}
}

func benchLoad(b *testing.B, main string, opts LoadOptions) {
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Load(main, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(cfg.Servers) != 2*benchUpstreams {
			b.Fatalf("%d targets", len(cfg.Servers))
		}
	}
}
