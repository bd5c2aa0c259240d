package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestConfigurationDocumentsEveryFlag keeps docs/configuration.md in step
// with the flags the binary really has.
func TestConfigurationDocumentsEveryFlag(t *testing.T) {
	requireExporter(t)
	doc, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	flagRE := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--(?:\[no-\])?([a-z][a-z0-9.-]*)`)
	for _, args := range []string{"--help-long", "serve --help", "diagnose --help"} {
		cmd := exec.Command(exporterBinary, strings.Fields(args)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", args, err, out)
		}
		flags := flagRE.FindAllStringSubmatch(string(out), -1)
		if len(flags) < 5 {
			t.Fatalf("%s: found only %d flags in:\n%s", args, len(flags), out)
		}
		for _, f := range flags {
			if name := strings.TrimRight(f[1], ".-"); !strings.Contains(string(doc), "`--"+name+"`") {
				t.Errorf("docs/configuration.md does not document --%s (from %s)", name, args)
			}
		}
	}
}
