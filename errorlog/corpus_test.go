package errorlog

import (
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
)

// TestFindCorpus finds the error logs of public configurations (the
// nginxconf corpus): server-level logs beside nginx's main one, the same
// file named at several levels once, relative names against the prefix.
func TestFindCorpus(t *testing.T) {
	corpus := filepath.Join("..", "nginxconf", "testdata", "corpus")
	cases := []struct {
		name string
		want []string // relative to the case directory; "" is DefaultPath
	}{
		{"debian-default", []string{"error.log"}},
		{"gitlab", []string{"", "gitlab_error.log"}},
		{"kong", []string{"logs/error.log"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(corpus, tc.name)
			cfg, err := nginxconf.Load(filepath.Join(dir, "nginx.conf"), nginxconf.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := Find(cfg.ErrorLogs, FindOptions{FromConfig: true}, slog.New(slog.DiscardHandler))
			var want []string
			for _, w := range tc.want {
				if w == "" {
					want = append(want, DefaultPath)
					continue
				}
				want = append(want, filepath.Join(dir, w))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Find = %q, want %q", got, want)
			}
		})
	}
}
