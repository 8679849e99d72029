#!/usr/bin/env bash
# Deploy latency, Ployz vs Docker Swarm on this machine, in one run (issue 8): command → new
# revision served. Needs root and dockerd; builds the local images it needs (scripts/images.sh).
# Swarm runs in a second dockerd inside a network namespace, so the shared engine never joins a swarm.
# Also the scale row (issue 16: 100 services, Ployz vs Debian's docker-compose 1.29) and the history
# row (preview of 200 services, deploy ls over 10,000 deploys) and the engine row (apply's engine time at 200).
# Usage: bash bench/deploy.sh   (DEPLOY_BENCH_ONLY=latency|scale|history|engine, ROUNDS=5, SWARM=0 to skip
# Swarm, SCALE_SERVICES=100, SCALE_ROUNDS=3, COMPOSE=0, PREVIEW_SERVICES=200, HISTORY_DEPLOYS=10000,
# ENGINE_SERVICES=200, ENGINE_ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# ployzd runs from source: the edge images must match it (idempotent, seconds when up to date).
bash scripts/images.sh networking nats gateway dns hello >/dev/null
if [[ "${DEPLOY_BENCH_ONLY:-scale}" == scale && "${COMPOSE:-1}" != 0 ]] && ! command -v docker-compose >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
echo "node $(node --version), docker $(docker version --format '{{.Server.Version}}'), $(nproc) cores (shared)${DEPLOY_BENCH_ONLY:+, only $DEPLOY_BENCH_ONLY}"
# The CLI is timed as built (its fast path), never mid-rebuild: build it once here.
pnpm turbo run build --filter ployzctl... --output-logs=errors-only >/dev/null ||
  { echo "ployzctl does not build; the CLI rows need it" >&2; exit 1; }
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
command -v docker-compose >/dev/null && echo "docker-compose $(docker-compose version --short)"
exec node --conditions=ployz-source bench/deploy.ts
