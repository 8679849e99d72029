#!/usr/bin/env bash
# @ployz/store beside the raw @nats-io client on one nats-server (KV get/put/create, lease
# acquire; p50/p99 and ratios). Usage: bash bench/store.sh   (env knobs: see bench/store.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
pnpm turbo run build --filter @ployz/store... --filter @ployz/testkit... --output-logs=errors-only >/dev/null
echo "$(nats-server --version), node $(node --version), $(nproc) cores (shared)"
exec node bench/store.ts
