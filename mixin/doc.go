// Package mixin holds the Prometheus alerts, recording rules and Grafana
// dashboards of nginx_upstream_exporter, written in jsonnet, and the Go tests
// that check the generated files: `go test ./mixin/...` from the repository
// root. The package has no Go API.
package mixin
