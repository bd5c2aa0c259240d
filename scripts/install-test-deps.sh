#!/usr/bin/env bash
# Installs the Debian packages the test suites start for real: nginx and
# php-fpm for the end-to-end scenarios, Prometheus (and promtool) and
# Alertmanager for the mixin, iptables/iproute2 for the network
# namespace faults. It installs only what is missing, so a developer's
# machine that already has everything is left alone.
set -euo pipefail

packages=(nginx-light libnginx-mod-stream php-fpm prometheus prometheus-alertmanager iptables nftables iproute2 util-linux procps ca-certificates chromium)
# binary that proves each package is present
probe_of() {
  case "$1" in
    nginx-light) echo /usr/sbin/nginx ;;
    libnginx-mod-stream) echo /usr/lib/nginx/modules/ngx_stream_module.so ;;
    php-fpm) ls /usr/sbin/php-fpm* 2>/dev/null | head -n1 || true ;;
    prometheus) echo /usr/bin/promtool ;;
    prometheus-alertmanager) echo /usr/bin/prometheus-alertmanager ;;
    iptables) echo /usr/sbin/iptables ;;
    nftables) echo /usr/sbin/nft ;;
    iproute2) echo /usr/bin/ip ;;
    util-linux) echo /usr/bin/unshare ;;
    procps) echo /usr/bin/pgrep ;;
    ca-certificates) echo /etc/ssl/certs/ca-certificates.crt ;;
    chromium) echo /usr/bin/chromium ;; # the status page's real-browser test (e2e)
  esac
}

missing=()
for p in "${packages[@]}"; do
  f=$(probe_of "$p")
  if [ -z "$f" ] || [ ! -e "$f" ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing test dependencies: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]});" >&2
  echo "suites that need them will skip" >&2
  exit 0
fi
echo "installing test dependencies: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
