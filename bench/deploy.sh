#!/usr/bin/env bash
# Deploy latency, Ployz vs Docker Swarm on this machine, in one run (issue 8): command → new
# revision served. Needs root, dockerd and the local images (bash scripts/images.sh). Swarm runs in
# a second dockerd inside a network namespace, so the shared engine never joins a swarm.
# Usage: bash bench/deploy.sh   (ROUNDS=5, SWARM=0 to skip Swarm)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
for image in networking nats gateway dns hello; do
  docker image inspect "ployz/$image:latest" >/dev/null 2>&1 || { echo "ployz/$image:latest is missing; run: bash scripts/images.sh" >&2; exit 1; }
done
echo "node $(node --version), docker $(docker version --format '{{.Server.Version}}'), $(nproc) cores (shared)"
exec node --conditions=ployz-source bench/deploy.ts
