#!/usr/bin/env bash
# Starts ployzd in the background (unless one already answers on its socket), initialises this
# machine (an already initialised machine is fine; with UP_JOIN_TOKEN_FILE it joins with the invite
# token in that file instead) and prints `ployzctl status`. Used by
# scripts/up.sh. Config: PLOYZ_* env (PLOYZ_STATE_DIR, PLOYZ_SOCKET_PATH, PLOYZ_GATEWAY_PORT, …),
# kept in /etc/ployz/ployzd.env for the service; log in $PLOYZ_LOG_FILE (default
# /var/log/ployz/ployzd.log). ployzd sees how it is supervised in PLOYZD_SUPERVISOR.
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

# ployzd runs as a service so a crash or a reboot does not leave the machine without it: a
# systemd unit (Restart=always, after docker.service) when systemd runs, else ployzd-supervise.sh.
ENV_FILE=/etc/ployz/ployzd.env
write_env() {
  mkdir -p "$(dirname "$ENV_FILE")"
  env | grep '^PLOYZ_' | sort >"$ENV_FILE"
  chmod 600 "$ENV_FILE"
}
if ployzctl status --json >/dev/null 2>&1; then
  echo "ployzd already answers on $SOCKET"
else
  mkdir -p "$(dirname "$LOG")" "$STATE"
  write_env
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    cat >/etc/systemd/system/ployzd.service <<UNIT
[Unit]
Description=Ployz machine daemon (ployzd)
After=docker.service network-online.target
Wants=docker.service network-online.target

[Service]
EnvironmentFile=$ENV_FILE
Environment=PLOYZD_SUPERVISOR=systemd
ExecStartPre=-/bin/bash $ROOT/apps/ployzd/bin/ployz-storage.sh remount
ExecStart=$(command -v node) --conditions=ployz-source $ROOT/apps/ployzd/src/main.ts run
Restart=always
RestartSec=1
StandardOutput=append:$LOG
StandardError=append:$LOG

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable --now ployzd.service
    how="systemd unit ployzd.service"
  else
    set -a
    source "$ENV_FILE"
    set +a
    PLOYZ_STATE_DIR=$STATE bash "$ROOT/apps/ployzd/bin/ployz-storage.sh" remount || true
    setsid nohup bash "$ROOT/apps/ployzd/bin/ployzd-supervise.sh" "$LOG" -- \
      node --conditions=ployz-source "$ROOT/apps/ployzd/src/main.ts" run >/dev/null 2>&1 &
    echo $! >"$STATE/ployzd-supervisor.pid"
    how="supervisor pid $(cat "$STATE/ployzd-supervisor.pid") (no systemd: restart at boot is up to the host)"
  fi
  for _ in $(seq 1 100); do
    ployzctl status --json >/dev/null 2>&1 && break
    sleep 0.2
  done
  ployzctl status --json >/dev/null 2>&1 || { echo "ployzd does not answer; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1; }
  echo "ployzd started as a service: $how (log $LOG)"
fi

# Volumes: PLOYZ_STORAGE if set (zfs:<pool>, btrfs:<path>, dir:<path>), else the default
# snapshot-capable btrfs image under the state dir (ployz-storage.sh; reused on the next run). Only
# a fresh `machine init` records it; an initialised machine keeps what it has.
storage=${PLOYZ_STORAGE:-}
if [ -z "$storage" ]; then
  storage=$(PLOYZ_STATE_DIR=$STATE bash "$ROOT/apps/ployzd/bin/ployz-storage.sh" ensure) || {
    echo "ployzd-up: could not prepare the default btrfs volume storage; volumes stay plain directories (no snapshots)" >&2
    storage=""
  }
fi
set +e
if [ -n "${UP_JOIN_TOKEN_FILE:-}" ]; then
  # scripts/up.sh --join: the invite token in that file; the issuer checks it before anything is written.
  out=$(ployzctl machine join --token-file "$UP_JOIN_TOKEN_FILE" ${storage:+--storage "$storage"} \
    ${PLOYZ_IMAGE_REGISTRY:+--registry "$PLOYZ_IMAGE_REGISTRY"} 2>&1)
else
  out=$(ployzctl machine init ${storage:+--storage "$storage"} ${PLOYZ_IMAGE_REGISTRY:+--registry "$PLOYZ_IMAGE_REGISTRY"} 2>&1)
fi
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
