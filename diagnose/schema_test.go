package diagnose

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/jsonschema"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestJSONMatchesPublishedSchema: every JSON document diagnose prints is
// valid against docs/api/targets.schema.json, the schema of GET
// /api/v1/targets too.
func TestJSONMatchesPublishedSchema(t *testing.T) {
	doc, err := os.ReadFile("../docs/api/targets.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := jsonschema.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	json := func(o *Options) { o.Output = OutputJSON }
	for name, tc := range map[string]struct {
		conf   string
		mutate func(*Options)
		code   int
	}{
		"probed, failing primary":  {mixed(t, testutil.DeadAddr(t)), json, ExitFailing},
		"probed, healthy":          {mixed(t, testutil.HTTPBackend(t)), json, ExitHealthy},
		"list":                     {mixed(t, testutil.HTTPBackend(t)), func(o *Options) { json(o); o.List = true }, ExitHealthy},
		"configuration not loaded": {filepath.Join(t.TempDir(), "absent.conf"), json, ExitUsage},
		"stream, tcp and udp": {testutil.WriteFile(t, t.TempDir(), "nginx.conf", fmt.Sprintf(`events {}
stream {
    upstream dns { server %s; }
    upstream db { server %s; }
    server { listen 127.0.0.1:5353 udp; proxy_pass dns; }
    server { listen 127.0.0.1:5432; proxy_pass db; }
}
`, testutil.DeadAddr(t), testutil.HTTPBackend(t))), json, ExitFailing},
	} {
		t.Run(name, func(t *testing.T) {
			res := runDiagnose(t, tc.conf, tc.mutate)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", res.code, tc.code, res.stderr)
			}
			for _, err := range schema.Validate([]byte(res.stdout)) {
				t.Error(err)
			}
		})
	}
}
