package config

import (
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// FuzzParse: whatever the file holds, Parse returns a config or an error,
// and a config it accepts can be applied to any upstream without panicking.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"defaults:\n  http: {method: GET, path: /, expect_status: [200], headers: {X-Probe: \"1\"}}\n",
		"upstreams:\n  - upstream: app\n    http: {method: HEAD, path: /healthz}\n    fastcgi: {ping_path: /ping}\n",
		"upstreams:\n  - upstream: app\n  - upstream: app\n",
		"defaults: {http: {headers: {Host: evil}}}\n",
		"upstreams: [{upstream: x, http: {expect_status: [99999]}}]\n",
		"---\n---\n",
		"&a [*a]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		var pt prober.Peer
		c.Apply("app", &pt)
		for _, u := range c.Upstreams {
			c.Apply(u.Upstream, &pt)
		}
	})
}
