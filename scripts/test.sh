#!/usr/bin/env bash
# Runs every check and test: setup (idempotent), build, typecheck, lint, images, then one vitest
# run over every workspace (unit, integration against real nats-server/dockerd, e2e).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PLOYZ_ROOT"

bash scripts/setup.sh
pnpm turbo run build typecheck --output-logs=errors-only
pnpm biome check .
if [ -x scripts/images.sh ]; then bash scripts/images.sh; fi

mkdir -p .cache
set +e
pnpm vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest.json "$@"
rc=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync(".cache/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' || true
exit $rc
