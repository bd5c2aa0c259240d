package nginxconf

import (
	"fmt"
	"strings"
	"testing"
)

// streamTree is a stream{} configuration with benchUpstreams upstream
// blocks of two servers, each used by a server that listens on TCP and
// UDP: 4*benchUpstreams targets.
func streamTree() memFS {
	var b strings.Builder
	b.WriteString("events {}\nstream {\n    proxy_connect_timeout 2s;\n")
	for i := range benchUpstreams {
		fmt.Fprintf(&b, "upstream dns%d {\n    server 10.%d.%d.1:53 weight=2;\n    server 10.%d.%d.2:53 backup;\n}\n",
			i, i/256%256, i%256, i/256%256, i%256)
		fmt.Fprintf(&b, "server {\n    listen %d;\n    listen %d udp;\n    proxy_timeout 5s;\n    proxy_pass dns%d;\n}\n", 10000+i, 10000+i, i)
	}
	b.WriteString("}\n")
	return memFS{"/etc/nginx/nginx.conf": b.String()}
}

func BenchmarkLoadStream(b *testing.B) {
	fs := streamTree()
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fs, PageSize: 4096})
		if err != nil {
			b.Fatal(err)
		}
		if len(cfg.Servers) != 4*benchUpstreams {
			b.Fatalf("%d targets", len(cfg.Servers))
		}
	}
}
