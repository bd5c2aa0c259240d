package nginxconf

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir holds public nginx configurations (testdata/corpus/MANIFEST.md
// names each one's source, commit and licence).
const corpusDir = "testdata/corpus"

// corpusEntry is one row of the manifest.
type corpusEntry struct {
	name, source, commit, licence string
	// nginxT is the verdict of nginx -t: "ok", or its message with the
	// position relative to the case directory.
	nginxT string
}

func readManifest(t *testing.T) map[string]corpusEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "MANIFEST.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]corpusEntry{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| case") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 5 {
			t.Fatalf("manifest row %q: want 5 cells", line)
		}
		e := corpusEntry{name: cells[0], source: cells[1], commit: cells[2], licence: cells[3], nginxT: cells[4]}
		if e.source == "" || e.commit == "" || e.licence == "" {
			t.Errorf("manifest row %q lacks its source, commit or licence", line)
		}
		out[e.name] = e
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCorpus loads every public configuration of testdata/corpus, checks
// its targets against want.txt and its real `nginx -t` verdict against
// the manifest. A configuration nginx refuses only for a module it lacks
// must still load; one nginx accepts must load.
func TestCorpus(t *testing.T) {
	manifest := readManifest(t)
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "common" {
			cases = append(cases, e.Name())
			if _, ok := manifest[e.Name()]; !ok {
				t.Errorf("%s is not in MANIFEST.md", e.Name())
			}
		}
	}
	for name := range manifest {
		if _, err := os.Stat(filepath.Join(corpusDir, name, "nginx.conf")); err != nil {
			t.Errorf("MANIFEST.md names %s: %v", name, err)
		}
	}
	if len(cases) < 25 {
		t.Errorf("the corpus has %d configurations, want at least 25", len(cases))
	}
	// One copy for nginx -t, which opens log and cache paths relative to
	// its prefix: never in the source tree.
	tmp := t.TempDir()
	if err := os.CopyFS(tmp, os.DirFS(corpusDir)); err != nil {
		t.Fatal(err)
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			entry := manifest[name]
			dir := filepath.Join(corpusDir, name)
			cfg, err := Load(filepath.Join(dir, "nginx.conf"), LoadOptions{PageSize: 4096})
			if err != nil {
				t.Fatalf("Load: %v (nginx -t: %s)", err, entry.nginxT)
			}
			got := corpusSummary(cfg, dir+string(filepath.Separator))
			golden := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(golden); err != nil {
				t.Errorf("%v (go test -update writes it)", err)
			} else if string(want) != got {
				t.Errorf("targets differ from %s (go test -update rewrites it):\n%s", golden, got)
			}

			copyDir := filepath.Join(tmp, name)
			v := nginxTestArgs(t, copyDir, filepath.Join(copyDir, "nginx.conf"))
			verdict := "ok"
			if !v.ok {
				verdict = v.msg
				if v.pos != "" {
					verdict += " (" + strings.TrimPrefix(v.pos, copyDir+string(filepath.Separator)) + ")"
				}
			}
			if verdict != entry.nginxT {
				t.Errorf("nginx -t says %q, MANIFEST.md %q", verdict, entry.nginxT)
			}
			if !v.ok && !strings.HasPrefix(v.msg, "unknown directive ") {
				t.Errorf("nginx refuses the configuration (%s) but Load accepts it", v.msg)
			}
		})
	}
}

// corpusSummary renders what Load found, one line per target, dynamic
// *_pass and unused upstream, with positions relative to the case.
func corpusSummary(cfg *Config, prefix string) string {
	var b strings.Builder
	rel := func(s string) string { return strings.ReplaceAll(s, prefix, "") }
	for _, s := range cfg.Servers {
		fmt.Fprintf(&b, "target %s %s %s", s.Kind().Label(), s.Upstream, s.Server)
		if s.SocketPath == "" {
			fmt.Fprintf(&b, " (%s:%s)", s.Host, s.Port)
		}
		set := s.Settings
		fmt.Fprintf(&b, " connect=%s read=%s send=%s", set.ConnectTimeout, set.ReadTimeout, set.SendTimeout)
		if s.Params.Backup {
			b.WriteString(" backup")
		}
		if s.Params.Down {
			b.WriteString(" down")
		}
		if s.RuntimeResolve {
			fmt.Fprintf(&b, " resolve=%v", s.Resolvers)
		}
		if set.SSL.Enabled && set.SSL.Verify {
			b.WriteString(" verify")
		}
		fmt.Fprintf(&b, " from %s\n", rel(strings.Join(s.Sources, ",")))
	}
	for _, d := range cfg.Dynamic {
		fmt.Fprintf(&b, "dynamic %s %s at %s: %s\n", d.Directive, d.Address, rel(d.Source), rel(d.Reason))
	}
	for _, u := range cfg.UnusedUpstreams {
		fmt.Fprintf(&b, "unused upstream %s\n", u)
	}
	if b.Len() == 0 {
		b.WriteString("no upstream\n")
	}
	return b.String()
}

// TestCorpusFilesAreRegular: the corpus is read through the OS; a link
// or device in it would make the copy for nginx -t differ from what Load
// reads.
func TestCorpusFilesAreRegular(t *testing.T) {
	err := filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			t.Errorf("%s is not a regular file", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
