# Sourced by every script: puts the project's own toolchain first on PATH.
# shellcheck shell=bash
PLOYZ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PLOYZ_TOOLS="$PLOYZ_ROOT/.tools"
PLOYZ_NODE_VERSION=24.21.0
PLOYZ_PNPM_VERSION=10.34.9
export PLOYZ_ROOT PLOYZ_TOOLS PLOYZ_NODE_VERSION PLOYZ_PNPM_VERSION
export PATH="$PLOYZ_TOOLS/bin:$PLOYZ_ROOT/node_modules/.bin:$PATH"
export DOCKER_BUILDKIT=0
export DOCKER_API_VERSION=1.41
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
