#!/usr/bin/env bash
# The mesh's cost, in one run (issue 18): container → container over the mesh (two netns machines of
# a local fleet, wg0 on wireguard-go) beside the same pair on one machine and beside the raw veth
# between the namespaces (latency p50/p99, req/s, MB/s, ratios); a cross-machine request through the
# gateway beside a local one. Needs root and the images (scripts/images.sh); uses scripts/fleet.sh
# (fleet 8 unless MESH_BENCH_FLEET). Usage: bash bench/mesh.sh   (env knobs: see bench/mesh.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
# ployzd runs from source: the edge images must match it (idempotent, seconds when up to date).
bash scripts/images.sh networking nats gateway dns hello >/dev/null
echo "$(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), $(docker run --rm --entrypoint wireguard-go ployz/networking:latest --version 2>&1 | head -1 | cut -d" " -f1-2) (ployz/networking), node $(node --version), $(nproc) cores (shared), load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec node --conditions=ployz-source bench/mesh.ts
