package loadstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// NginxTest runs `nginx -t`, the authority on whether nginx would load
// its configuration. It is opt-in (--nginx.test-config): nginx -t runs
// nginx's own configuration code with the exporter's privileges, opens
// the log files the configuration names and, as root, may create them.
type NginxTest struct {
	// Binary is nginx's executable; Config and Prefix its -c and -p.
	Binary, Config, Prefix string
	// Timeout bounds one run; 0 means 30 seconds.
	Timeout time.Duration
}

// emergLine is nginx's "nginx: [emerg] MESSAGE" on stderr before the
// error log is open, "DATE [emerg] PID#TID: MESSAGE" once error_log is
// configured; the message ends with " in FILE:LINE" when it is about a
// position in the configuration.
var emergLine = regexp.MustCompile(`(?m)\[(?:emerg|alert|crit)\] (?:\d+#\d+: )?(.*)$`)

// Run tests the configuration and returns nginx's refusals, classified.
func (n *NginxTest) Run(ctx context.Context) ([]Failure, error) {
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"-t", "-q", "-c", n.Config}
	if n.Prefix != "" {
		args = append(args, "-p", n.Prefix)
	}
	cmd := exec.CommandContext(ctx, n.Binary, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil, nil
	case !errors.As(err, &ee):
		return nil, fmt.Errorf("running %s -t: %w", n.Binary, err)
	}
	f := parseNginxTest(out.String())
	if len(f) == 0 {
		return nil, fmt.Errorf("%s -t failed without an [emerg] line: %s", n.Binary, strings.TrimSpace(out.String()))
	}
	return f, nil
}

// parseNginxTest classifies each [emerg] line of nginx -t's output.
func parseNginxTest(out string) []Failure {
	var fs []Failure
	for _, m := range emergLine.FindAllStringSubmatch(out, -1) {
		msg := m[1]
		reason := ReasonParseError
		switch {
		case strings.Contains(msg, "host not found in upstream"):
			reason = ReasonHostNotFound
		case strings.Contains(msg, "No such file or directory"), strings.Contains(msg, "Permission denied"),
			strings.HasPrefix(msg, "cannot load certificate"), strings.HasPrefix(msg, "SSL_CTX_load_verify_locations"):
			reason = ReasonFileMissing
		}
		fs = append(fs, Failure{Reason: reason, Message: msg})
	}
	return fs
}
