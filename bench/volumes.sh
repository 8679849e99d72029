#!/usr/bin/env bash
# Volumes (issue 17), per driver (btrfs on a loop device, zfs on a file-backed pool; a driver whose
# tools are missing is skipped with a line): rollback time of a 1 GiB volume beside a 10 MiB one
# (goal ratio ≤ 1.5×), and deploy latency with and without a volume (goal: the snapshot adds
# ≤ 50 ms p50). Needs root and dockerd; builds the local images it needs (scripts/images.sh).
# Usage: bash bench/volumes.sh   (ROUNDS=3, DEPLOY_ROUNDS=10, SMALL_MIB=10, BIG_MIB=1024,
# VOLUME_BENCH_DRIVERS=btrfs,zfs, VOLUME_BENCH_ONLY=rollback|latency)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# ployzd runs from source: the edge images must match it (idempotent, seconds when up to date).
bash scripts/images.sh networking nats gateway dns hello >/dev/null
# The rollback is timed through the built CLI, never mid-rebuild: build it once here.
pnpm turbo run build --filter ployzctl... --output-logs=errors-only >/dev/null ||
  { echo "ployzctl does not build; the rollback rows need it" >&2; exit 1; }
echo "node $(node --version), docker $(docker version --format '{{.Server.Version}}'), $(nproc) cores (shared), load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec node --conditions=ployz-source bench/volumes.ts
