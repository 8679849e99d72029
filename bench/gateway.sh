#!/usr/bin/env bash
# ployz-gateway beside nginx (1 worker), haproxy (1 thread), Caddy (GOMAXPROCS=1) and direct, on
# the same loopback backend, with wrk; plus projection rebuild time for 10k instances, gateway RSS
# and event→served latency over a real nats-server. Usage: bash bench/gateway.sh
# (env knobs: see bench/gateway.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v caddy >/dev/null || missing+=(caddy)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The Debian packages start system services; the bench runs its own instances only.
pnpm turbo run build --filter ployz-gateway... --filter @ployz/bench... --output-logs=errors-only >/dev/null
echo "nginx $(nginx -v 2>&1 | awk -F/ '{print $2}'), $(haproxy -v | head -1 | awk '{print $1, $3}'), caddy $(caddy version | awk '{print $1}'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), node $(node --version), $(nproc) cores (shared)"
exec node bench/gateway.ts
