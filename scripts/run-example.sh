#!/usr/bin/env bash
# Runs the exporter on examples/nginx.conf, prints the verdicts of the first
# probe round, then keeps serving until interrupted.
set -euo pipefail
bin=${1:-./nginx_upstream_exporter}
addr=${2:-127.0.0.1:10650}
cd "$(dirname "$0")/.."
"$bin" --nginx.config=examples/nginx.conf --web.listen-address="$addr" --probe.interval=5s &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
# fetch PATH: curl when present, else bash's /dev/tcp (a bare Debian has no curl).
fetch() {
  if command -v curl >/dev/null; then curl -fsS "http://$addr$1"; return; fi
  local host=${addr%:*} port=${addr##*:}
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$addr" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
for _ in $(seq 1 50); do
  if fetch /metrics 2>/dev/null | grep -q '^nginx_upstream_probe_success'; then
    # give every target its first probe (they are spread over the interval)
    sleep 5
    break
  fi
  sleep 0.2
done
echo
echo "Verdicts (nginx_upstream_probe_success and failure reasons) from http://$addr/metrics:"
fetch /metrics | grep -E '^nginx_upstream_(probe_success|probe_failure_reason|exporter_targets)' || true
echo
echo "Status page: open http://$addr/ in a browser: which servers fail, why, and what to try."
echo "The same as JSON: http://$addr/api/v1/targets"
echo "Exporter running (Ctrl-C to stop)."
wait $pid
