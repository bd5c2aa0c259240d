// Package e2e holds the end-to-end suite: for each scenario it builds a
// fault (or a healthy backend) on loopback, sends a request through Debian's
// nginx, records nginx's status and error-log line, runs the exporter on the
// same nginx.conf and asserts that the exporter's verdict matches nginx's,
// through the failure-reason table of docs/metrics.md. Every other test
// that builds and runs the exporter binary lives here too.
//
// Run it with `go test ./e2e/...`. It needs nginx, php-fpm, iproute2 and
// iptables, and root for the scenarios that use network namespaces or a
// separate worker user. Missing prerequisites skip a scenario on a
// developer's machine and fail it when CI=true.
package e2e
