#!/bin/bash
# ployz-networking entry: brings up the WireGuard interface and keeps running for as long as it
# lives. The contract is documented in images/README.md; summary:
#   PLOYZ_WG_INTERFACE      interface name (default wg0)
#   PLOYZ_WG_PRIVATE_KEY_FILE  private key file (default /etc/ployz/wg/private.key); when absent,
#                           PLOYZ_WG_PRIVATE_KEY (base64) is used; when neither, a key is generated
#   PLOYZ_WG_LISTEN_PORT    UDP listen port (default 51820)
#   PLOYZ_WG_ADDRESSES      comma-separated CIDRs put on the interface (e.g. fd8c::1/128,10.210.0.1/32)
#   PLOYZ_WG_ROUTES         comma-separated CIDRs routed through the interface
#   PLOYZ_WG_PEERS_FILE     optional `wg addconf` file with [Peer] sections (default /etc/ployz/wg/peers.conf)
#   PLOYZ_WG_MTU            MTU (default 1420)
#   PLOYZ_WG_MODE           auto (kernel, else wireguard-go) | kernel | userspace (default auto)
# Readiness: /run/ployz/networking.ready exists and one JSON line {"msg":"ready",...} is printed.
# `ployz-networking health` exits 0 when the interface is up. SIGTERM removes the interface and exits 0.
set -euo pipefail

IFACE=${PLOYZ_WG_INTERFACE:-wg0}
READY=/run/ployz/networking.ready

say() { printf '{"level":"%s","component":"ployz-networking","interface":"%s","msg":"%s"%s}\n' "$1" "$IFACE" "$2" "${3:-}"; }

if [ "${1:-}" = health ]; then
  [ -f "$READY" ] && ip link show dev "$IFACE" up >/dev/null 2>&1 && wg show "$IFACE" >/dev/null 2>&1
  exit $?
fi

rm -f "$READY"
mkdir -p /run/ployz

case "${PLOYZ_WG_ADDRESSES:-}" in
  *:*)
    if [ "$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || echo 1)" != 0 ]; then
      say error "IPv6 is disabled in this network namespace: run the container with --sysctl net.ipv6.conf.all.disable_ipv6=0"
      exit 1
    fi ;;
esac

key_file=${PLOYZ_WG_PRIVATE_KEY_FILE:-/etc/ployz/wg/private.key}
if [ -f "$key_file" ]; then
  key_source=$key_file
elif [ -n "${PLOYZ_WG_PRIVATE_KEY:-}" ]; then
  key_file=/run/ployz/wg-private.key
  (umask 077 && printf '%s\n' "$PLOYZ_WG_PRIVATE_KEY" >"$key_file")
  key_source=env
else
  key_file=/run/ployz/wg-private.key
  (umask 077 && wg genkey >"$key_file")
  key_source=generated
fi

wg_pid=""
shutdown() {
  say info stopping
  rm -f "$READY"
  ip link del dev "$IFACE" 2>/dev/null || true
  if [ -n "$wg_pid" ]; then kill "$wg_pid" 2>/dev/null || true; wait "$wg_pid" 2>/dev/null || true; fi
  exit 0
}
trap shutdown TERM INT

# A stale interface from an earlier run of this container is replaced.
ip link del dev "$IFACE" 2>/dev/null || true

mode=${PLOYZ_WG_MODE:-auto}
if [ "$mode" != userspace ] && ip link add dev "$IFACE" type wireguard 2>/dev/null; then
  mode=kernel
else
  [ "$mode" = kernel ] && { say error "kernel WireGuard is not available"; exit 1; }
  mode=userspace
  [ -c /dev/net/tun ] || { say error "no /dev/net/tun: run the container with --device /dev/net/tun"; exit 1; }
  WG_PROCESS_FOREGROUND=1 wireguard-go "$IFACE" &
  wg_pid=$!
  for _ in $(seq 1 100); do
    ip link show dev "$IFACE" >/dev/null 2>&1 && [ -S "/var/run/wireguard/$IFACE.sock" ] && break
    kill -0 "$wg_pid" 2>/dev/null || { say error "wireguard-go exited"; exit 1; }
    sleep 0.05
  done
  ip link show dev "$IFACE" >/dev/null 2>&1 || { say error "wireguard-go did not create the interface"; exit 1; }
fi

wg set "$IFACE" private-key "$key_file" listen-port "${PLOYZ_WG_LISTEN_PORT:-51820}"
peers=${PLOYZ_WG_PEERS_FILE:-/etc/ployz/wg/peers.conf}
if [ -f "$peers" ]; then wg addconf "$IFACE" "$peers"; fi
ip link set dev "$IFACE" mtu "${PLOYZ_WG_MTU:-1420}"
IFS=',' read -r -a addrs <<<"${PLOYZ_WG_ADDRESSES:-}"
for a in "${addrs[@]}"; do [ -n "$a" ] && ip address add "$a" dev "$IFACE"; done
ip link set dev "$IFACE" up
IFS=',' read -r -a routes <<<"${PLOYZ_WG_ROUTES:-}"
for r in "${routes[@]}"; do [ -n "$r" ] && ip route replace "$r" dev "$IFACE"; done

touch "$READY"
say info ready ",\"mode\":\"$mode\",\"key\":\"$key_source\",\"public_key\":\"$(wg show "$IFACE" public-key)\",\"listen_port\":$(wg show "$IFACE" listen-port)"

if [ -n "$wg_pid" ]; then
  set +e
  wait "$wg_pid"
  rc=$?
  say error "wireguard-go exited" ",\"code\":$rc"
  rm -f "$READY"
  exit 1
else
  # Kernel mode: nothing to supervise; sleep until stopped.
  while ip link show dev "$IFACE" >/dev/null 2>&1; do sleep 5 & wait $!; done
  say error "interface disappeared"
  exit 1
fi
