#!/usr/bin/env bash
# kill -9 + restart ployzd RESTARTS times (default 10) under load on the gateway's health endpoint;
# prints requests, failed requests (goal 0) and containers recreated (goal 0). Then, on a dockerd
# of its own in a netns host, dockerd restarted ENGINE_RESTARTS times (default 3) under a load loop
# that checks every body: failed requests (goal: only inside the windows), wrong-service responses
# (goal 0), window lengths. DAEMON_BENCH_ONLY=daemon|engine runs one row. Needs root, dockerd and
# the local images (bash scripts/images.sh). Usage: bash bench/daemon-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
for image in networking nats gateway dns hello; do
  docker image inspect "ployz/$image:latest" >/dev/null 2>&1 || { echo "ployz/$image:latest is missing; run: bash scripts/images.sh" >&2; exit 1; }
done
echo "node $(node --version), docker $(docker version --format '{{.Server.Version}}'), $(nproc) cores (shared)"
exec node --conditions=ployz-source bench/daemon-restart.ts
