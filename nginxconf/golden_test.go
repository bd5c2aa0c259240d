package nginxconf

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.json from the current output")

// TestGolden loads every testdata/<case>/nginx.conf, from the disk and
// through an in-memory FS, and compares the result with
// testdata/<case>/want.json (or the error with want.err).
func TestGolden(t *testing.T) {
	for _, name := range caseDirs(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			main := filepath.Join(dir, "nginx.conf")
			got := loadJSON(t, main, LoadOptions{PageSize: 4096})
			mem := loadJSON(t, main, LoadOptions{PageSize: 4096, FS: readTree(t, dir)})
			if !bytes.Equal(got, mem) {
				t.Errorf("in-memory FS and OS disagree:\nOS:  %s\nmem: %s", got, mem)
			}
			golden := filepath.Join(dir, "want.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("result differs from %s (go test -update rewrites it):\ngot:\n%s", golden, got)
			}
		})
	}
}

func loadJSON(t *testing.T, main string, opts LoadOptions) []byte {
	t.Helper()
	cfg, err := Load(main, opts)
	if err != nil {
		b, _ := json.MarshalIndent(map[string]string{"error": err.Error()}, "", "  ")
		return append(b, '\n')
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}
