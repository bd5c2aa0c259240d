#!/bin/sh
# Installs what `make -C mixin check` and `go test ./mixin/...` need on a
# fresh Debian 12 machine that already has Go (see ../go.mod for the version).
#
#   apt package  prometheus   promtool (check rules, test rules, panel PromQL)
#                             and the prometheus server (end-to-end test)
#   Go tools     pinned in tools/go.mod, built into mixin/.bin by make:
#                github.com/google/go-jsonnet/cmd/jsonnet     v0.22.0
#                github.com/google/go-jsonnet/cmd/jsonnetfmt  v0.22.0
#                github.com/grafana/dashboard-linter          v0.0.0-20241224134444-1765d94aec4a
#                (first build of the linter takes a few minutes)
set -eu
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
	apt-get install -y --no-install-recommends prometheus
fi
make tools
