#!/usr/bin/env bash
# kill -9 + restart ployzd RESTARTS times (default 10) under load on the gateway's health endpoint;
# prints requests, failed requests (goal 0) and containers recreated (goal 0). Needs root, dockerd
# and the local images (bash scripts/images.sh). Usage: bash bench/daemon-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
for image in networking nats gateway dns; do
  docker image inspect "ployz/$image:latest" >/dev/null 2>&1 || { echo "ployz/$image:latest is missing; run: bash scripts/images.sh" >&2; exit 1; }
done
echo "node $(node --version), docker $(docker version --format '{{.Server.Version}}'), $(nproc) cores (shared)"
exec node --conditions=ployz-source bench/daemon-restart.ts
