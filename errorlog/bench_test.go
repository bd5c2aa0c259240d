package errorlog

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
)

// realisticLog is a mix of what a busy nginx writes at level error and
// info: upstream errors of several kinds and peers, no live upstreams,
// FastCGI stderr, client-side noise, reload notices.
func realisticLog(targets int) []byte {
	var b strings.Builder
	kinds := []string{
		`connect() failed (111: Connection refused) while connecting to upstream`,
		`upstream timed out (110: Connection timed out) while reading response header from upstream`,
		`recv() failed (104: Connection reset by peer) while reading response header from upstream`,
		`upstream prematurely closed connection while reading upstream`,
		`upstream sent too big header while reading response header from upstream`,
	}
	for i := range 1000 {
		peer := fmt.Sprintf("10.%d.%d.%d:8080", i%targets>>16&255, i%targets>>8&255, i%targets&255)
		switch i % 10 {
		case 7:
			fmt.Fprintf(&b, "2026/11/27 08:14:20 [info] 6#6: *%d client prematurely closed connection while reading upstream, client: 192.0.2.%d, server: shop.example, request: \"GET /cart?id=%d HTTP/1.1\", upstream: \"http://%s/cart?id=%d\", host: \"shop.example\"\n", i, i%250, i, peer, i)
		case 8:
			fmt.Fprintf(&b, "2026/11/27 08:14:20 [error] 6#6: *%d FastCGI sent in stderr: \"PHP message: PHP Warning:  Undefined variable $x in /var/www/index.php on line %d\" while reading response header from upstream, client: 192.0.2.1, server: shop.example, request: \"POST /index.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"shop.example\", referrer: \"https://shop.example/\"\n", i, i)
		case 9:
			fmt.Fprintf(&b, "2026/11/27 08:14:20 [error] 6#6: *%d no live upstreams while connecting to upstream, client: 192.0.2.1, server: shop.example, request: \"GET /api/v1/items?page=%d HTTP/1.1\", upstream: \"http://u%d/api/v1/items?page=%d\", host: \"shop.example\"\n", i, i, i%10, i)
		default:
			fmt.Fprintf(&b, "2026/11/27 08:14:20 [error] 6#6: *%d %s, client: 192.0.2.%d, server: shop.example, request: \"GET /api/v1/items/%d?expand=true HTTP/1.1\", upstream: \"http://%s/api/v1/items/%d?expand=true\", host: \"shop.example\", referrer: \"https://shop.example/items\"\n", i, kinds[i%len(kinds)], i%250, i, peer, i)
		}
	}
	return []byte(b.String())
}

func benchSet(n int) *discovery.Set {
	set := &discovery.Set{}
	for i := range n {
		addr := fmt.Sprintf("10.%d.%d.%d:8080", i>>16&255, i>>8&255, i&255)
		set.Targets = append(set.Targets, target(fmt.Sprintf("u%d", i/10), addr, addr, "http", "tcp"))
	}
	return set
}

// BenchmarkParse is the line parser alone, per line.
func BenchmarkParse(b *testing.B) {
	lines := strings.Split(strings.TrimSuffix(string(realisticLog(10000)), "\n"), "\n")
	bl := make([][]byte, len(lines))
	for i, l := range lines {
		bl[i] = []byte(l)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var e Entry
	i := 0
	for b.Loop() {
		Parse(bl[i%len(bl)], &e)
		i++
	}
}

// BenchmarkConsume is the whole pipeline after the read: split, parse,
// attribute to 10,000 targets, count. One op is one line.
func BenchmarkConsume(b *testing.B) {
	data := realisticLog(10000)
	nlines := strings.Count(string(data), "\n")
	r := New(Options{})
	r.Update(benchSet(10000))
	var st lineState
	b.SetBytes(int64(len(data) / nlines))
	b.ReportAllocs()
	b.ResetTimer()
	lines := 0
	for lines < b.N {
		r.consume(&st, data)
		lines += nlines
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
