#!/usr/bin/env bash
# Starts ployzd in the background (unless one already answers on its socket), initialises this
# machine (an already initialised machine is fine) and prints `ployzctl status`. Used by
# scripts/up.sh. Config: PLOYZ_* env (PLOYZ_STATE_DIR, PLOYZ_SOCKET_PATH, PLOYZ_GATEWAY_PORT, …),
# log in $PLOYZ_LOG_FILE (default /var/log/ployz/ployzd.log), pid in <state dir>/ployzd.pid.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
source "$ROOT/scripts/env.sh"

SOCKET=${PLOYZ_SOCKET_PATH:-/run/ployz/ployzd.sock}
STATE=${PLOYZ_STATE_DIR:-/var/lib/ployz}
LOG=${PLOYZ_LOG_FILE:-/var/log/ployz/ployzd.log}
export PLOYZ_SOCKET_PATH=$SOCKET PLOYZ_STATE_DIR=$STATE
ployzd() { node --conditions=ployz-source "$ROOT/apps/ployzd/src/main.ts" "$@"; }
ployzctl() { node --conditions=ployz-source "$ROOT/apps/ployzctl/bin/run.js" "$@"; }

[ "$(id -u)" = 0 ] || { echo "ployzd-up: ployzd needs root (docker, WireGuard); run as root" >&2; exit 1; }

if ployzctl status --json >/dev/null 2>&1; then
  echo "ployzd already answers on $SOCKET"
else
  mkdir -p "$(dirname "$LOG")" "$STATE"
  nohup node --conditions=ployz-source "$ROOT/apps/ployzd/src/main.ts" run >>"$LOG" 2>&1 &
  echo $! >"$STATE/ployzd.pid"
  for _ in $(seq 1 100); do
    ployzctl status --json >/dev/null 2>&1 && break
    kill -0 "$(cat "$STATE/ployzd.pid")" 2>/dev/null || { echo "ployzd exited; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.2
  done
  echo "ployzd started (pid $(cat "$STATE/ployzd.pid"), log $LOG)"
fi

set +e
out=$(ployzctl machine init 2>&1)
rc=$?
set -e
if [ $rc -ne 0 ] && ! grep -q ALREADY_INITIALISED <<<"$out"; then
  echo "$out" >&2
  exit $rc
fi
echo "$out"
# Wait for NATS before showing status (the data plane may just have been created).
for _ in $(seq 1 100); do
  ployzctl status --json 2>/dev/null | grep -q '"state": "connected"' && break
  sleep 0.2
done
ployzctl status
