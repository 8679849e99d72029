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
#   PLOYZ_GUARD_SUBNET      optional workload subnet (e.g. 10.210.0.0/24): TCP to PLOYZ_GUARD_TCP_PORTS
#                           from it (and IPv4 from the mesh, through the interface: other machines'
#                           workloads) is rejected in this netns, except from PLOYZ_GUARD_ALLOW (the host)
#   PLOYZ_GUARD_ALLOW       the one address of that subnet still let through (the bridge gateway, .1)
#   PLOYZ_GUARD_TCP_PORTS   comma-separated system ports closed to the subnet (NATS, monitoring, admin)
# Readiness: /run/ployz/networking.ready exists and one JSON line {"msg":"ready",...} is printed.
# `ployz-networking health` exits 0 when the interface is up (and the guard rule is in place, when
# configured). SIGTERM removes the interface and exits 0.
set -euo pipefail

IFACE=${PLOYZ_WG_INTERFACE:-wg0}
READY=/run/ployz/networking.ready

say() { printf '{"level":"%s","component":"ployz-networking","interface":"%s","msg":"%s"%s}\n' "$1" "$IFACE" "$2" "${3:-}"; }

GUARD_CHAIN=PLOYZ-GUARD
guard_jump() { iptables "$1" INPUT -p tcp -m multiport --dports "$PLOYZ_GUARD_TCP_PORTS" -j "$GUARD_CHAIN"; }

if [ "${1:-}" = health ]; then
  [ -f "$READY" ] && ip link show dev "$IFACE" up >/dev/null 2>&1 && wg show "$IFACE" >/dev/null 2>&1 \
    && { [ -z "${PLOYZ_GUARD_SUBNET:-}" ] || guard_jump -C 2>/dev/null; }
  exit $?
fi

rm -f "$READY"
mkdir -p /run/ployz

# System ports closed to the workload subnet before anything listens (docs/adr/0011-trust-model.md).
# The netns belongs to this container, so the rule lives and dies with it; a restart rebuilds it.
if [ -n "${PLOYZ_GUARD_SUBNET:-}" ]; then
  [ -n "${PLOYZ_GUARD_ALLOW:-}" ] && [ -n "${PLOYZ_GUARD_TCP_PORTS:-}" ] \
    || { say error "PLOYZ_GUARD_SUBNET needs PLOYZ_GUARD_ALLOW and PLOYZ_GUARD_TCP_PORTS"; exit 1; }
  iptables -N "$GUARD_CHAIN" 2>/dev/null || iptables -F "$GUARD_CHAIN"
  iptables -A "$GUARD_CHAIN" -i lo -j RETURN
  iptables -A "$GUARD_CHAIN" -s "$PLOYZ_GUARD_ALLOW" -j RETURN
  iptables -A "$GUARD_CHAIN" -s "$PLOYZ_GUARD_SUBNET" -p tcp -j REJECT --reject-with tcp-reset
  # Workloads of the other machines arrive over the mesh: IPv4 through the tunnel is theirs (the
  # machines themselves talk over the overlay IPv6), so it is closed to the same ports.
  iptables -A "$GUARD_CHAIN" -i "$IFACE" -p tcp -j REJECT --reject-with tcp-reset
  guard_jump -C 2>/dev/null || guard_jump -I
  say info guarded ",\"subnet\":\"$PLOYZ_GUARD_SUBNET\",\"ports\":\"$PLOYZ_GUARD_TCP_PORTS\""
fi

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
