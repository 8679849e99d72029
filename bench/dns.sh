#!/usr/bin/env bash
# ployz-dns beside dnsmasq (dnsperf on loopback, same names, TTL 0) and routing-event freshness
# over a real nats-server. Usage: bash bench/dns.sh   (env knobs: see bench/dns.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
missing=()
command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
pnpm turbo run build --filter ployz-dns... --filter @ployz/bench... --output-logs=errors-only >/dev/null
echo "dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}'), $(dnsperf -h 2>&1 | grep -m1 -o 'DNS Performance Testing Tool.*' || echo dnsperf), node $(node --version), $(nproc) cores (shared)"
node --conditions=ployz-source bench/dns-hotpath.ts
echo
exec node bench/dns.ts
