#!/usr/bin/env bash
# A small supervisor for machines without systemd: runs the command after `--`, and whenever it
# exits (crash, kill, dockerd gone) starts it again after a short pause, doubling up to 10 s while
# it keeps failing fast. SIGTERM/SIGINT to the supervisor stop it and its child.
#   ployzd-supervise.sh <log file> -- <command…>
set -uo pipefail
LOG=$1
shift
[ "${1:-}" = "--" ] && shift
child=0
stop() {
  [ "$child" -ne 0 ] && kill -TERM "$child" 2>/dev/null && wait "$child"
  exit 0
}
trap stop TERM INT
pause=1
while :; do
  started=$(date +%s)
  PLOYZD_SUPERVISOR=supervisor "$@" >>"$LOG" 2>&1 &
  child=$!
  wait "$child"
  rc=$?
  child=0
  echo "ployzd-supervise: exited with $rc; restarting in ${pause}s" >>"$LOG"
  sleep "$pause" &
  wait $!
  if [ $(($(date +%s) - started)) -ge 30 ]; then pause=1; else pause=$((pause * 2 > 10 ? 10 : pause * 2)); fi
done
