#!/usr/bin/env bash
# @ployz/store beside the raw @nats-io client on one nats-server (KV get/put/create, lease
# acquire, a deploy ls page over 10k statuses; p50/p99 and ratios), then the same store operations
# on an open server vs one with NKey auth (issue 13). Usage: bash bench/store.sh   (env knobs: see bench/store.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
pnpm turbo run build --filter @ployz/store... --filter @ployz/testkit... --output-logs=errors-only >/dev/null
echo "$(nats-server --version), node $(node --version), $(nproc) cores (shared), load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec node bench/store.ts
