#!/usr/bin/env bash
# A local fleet on one host (DESIGN.md §7, docs/fleet.md "A fleet on one box"): machines m1…mN as
# network namespaces on one LAN, each with its own dockerd, its own ployzd and data plane (and so
# its own wg0), m1 initialised and m2… joined with invites from m1. Needs root and the images
# (bash scripts/images.sh).
#
#   bash scripts/fleet.sh up [N]            N machines (default 3); adds what is missing, changes nothing else
#   bash scripts/fleet.sh ctl <m> <args…>   ployzctl against <m>'s ployzd
#   bash scripts/fleet.sh docker <m> <args…> docker against <m>'s dockerd
#   bash scripts/fleet.sh gw <m>            <m>'s gateway URL, reachable from this host
#   bash scripts/fleet.sh cut <m> | heal <m> take <m> off the LAN / back (its processes keep running)
#   bash scripts/fleet.sh ls                the machines this fleet made, with their PIDs
#   bash scripts/fleet.sh down              removes everything `up` made (recorded PIDs and names only)
#
# Names and addresses (fleet F = PLOYZ_FLEET, 0…63, default 0; apart from the testkit's pzt-/pzl-
# namespaces and 10.231/10.232 ranges):
#   netns  pzf<F>-m<i> (machine), pzf<F>-lan (the LAN: bridge br0, so the host firewall never sees it)
#   links  pzf<F>m<i>h (host end of the machine's eth0, 10.233.F.4i+1/30; the machine is 10.233.F.4i+2)
#          pzf<F>m<i>l (the LAN end of the machine's lan0 at 10.234.F.i/24, in pzf<F>-lan)
#   dirs   PLOYZ_FLEET_DIR (default /run/ployz-fleet, /run/ployz-fleet-F for F > 0): per machine its
#          dockerd (data, exec root, socket, pidfile), ployzd (state dir, socket, pid, log)
# Each machine's ployzd listens for WireGuard on <lan>:51820, joins on <lan>:51821, and publishes its
# gateway on <eth0>:PLOYZ_FLEET_GATEWAY_PORT (default 80). Processes run detached (setsid): they
# outlive this script and stop only with `down`.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/env.sh"

FLEET=${PLOYZ_FLEET:-0}
[[ $FLEET =~ ^[0-9]+$ ]] && ((FLEET <= 63)) || { echo "fleet: PLOYZ_FLEET must be 0…63, got $FLEET" >&2; exit 2; }
if ((FLEET == 0)); then DIR=${PLOYZ_FLEET_DIR:-/run/ployz-fleet}; else DIR=${PLOYZ_FLEET_DIR:-/run/ployz-fleet-$FLEET}; fi
P=pzf$FLEET
LAN_NS=$P-lan
GW_PORT=${PLOYZ_FLEET_GATEWAY_PORT:-80}
WG_PORT=51820
JOIN_PORT=51821
MAX_MACHINES=63
COMPONENTS=(networking nats gateway dns)
IMAGES=(ployz/networking:latest ployz/nats:latest ployz/gateway:latest ployz/dns:latest ployz/hello:latest)

die() { printf 'fleet: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'fleet: [%3d s] %s\n' "$SECONDS" "$*"; }

# Per machine m<i>: names, addresses, paths.
index() { [[ $1 =~ ^m([0-9]+)$ ]] && ((BASH_REMATCH[1] >= 1 && BASH_REMATCH[1] <= MAX_MACHINES)) || die "no machine '$1' (m1…m$MAX_MACHINES)"; echo "${BASH_REMATCH[1]}"; }
netns() { echo "$P-$1"; }
host_if() { echo "$P$1h"; }
lan_if() { echo "$P$1l"; }
host_addr() { echo "10.233.$FLEET.$((4 * $(index "$1") + 1))"; }
machine_addr() { echo "10.233.$FLEET.$((4 * $(index "$1") + 2))"; }
lan_addr() { echo "10.234.$FLEET.$(index "$1")"; }
mdir() { echo "$DIR/$1"; }
docker_sock() { echo "$DIR/$1/docker.sock"; }
ployzd_sock() { echo "$DIR/$1/ployzd.sock"; }
mdocker() { local m=$1; shift; docker -H "unix://$(docker_sock "$m")" "$@"; }
mctl() { local m=$1; shift; PLOYZ_SOCKET_PATH=$(ployzd_sock "$m") "$PLOYZ_ROOT/scripts/ployzctl" "$@"; }
# The machines this fleet made, in order (m1 m2 …): one directory each.
machines() { local d; for d in "$DIR"/m*/; do [ -d "$d" ] && basename "$d"; done | sort -V; }
known() { [ -d "$(mdir "$1")" ] || die "$1 is not up (bash scripts/fleet.sh up)"; }

# A PID from `file` when that process is alive and is the one recorded: its command line contains
# `marker` (a path only this fleet uses), so a reused PID is never taken for ours.
owned_pid() {
  local file=$1 marker=$2 pid
  pid=$(cat "$file" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
  echo "$pid"
}

# TERM, then KILL after `grace` seconds.
stop_pid() {
  local pid=$1 grace=${2:-10} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

# Runs "$@" detached (its own session, stdio to `log`), with every inherited descriptor above 2
# closed: a daemon must never hold a lock (flock) of whoever ran the script, nor this script's own.
detach() {
  local log=$1 fd
  shift
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid nohup "$@" >>"$log" 2>&1 </dev/null
  ) &
}

json() { node -e "let t='';process.stdin.on('data',d=>t+=d).on('end',()=>{const j=JSON.parse(t);console.log(String(($1)(j)))})"; }

ensure_lan() {
  [ -e "/var/run/netns/$LAN_NS" ] || ip netns add "$LAN_NS"
  ip -n "$LAN_NS" link show br0 >/dev/null 2>&1 || ip -n "$LAN_NS" link add br0 type bridge
  ip -n "$LAN_NS" link set br0 up
  ip -n "$LAN_NS" link set lo up
}

# The machine's netns: eth0 to the host (a /30, default route via the host end), lan0 on the LAN.
ensure_netns() {
  local m=$1 ns hif lif
  ns=$(netns "$m") hif=$(host_if "$m") lif=$(lan_if "$m")
  [ -e "/var/run/netns/$ns" ] || ip netns add "$ns"
  ip -n "$ns" link set lo up
  if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
    ip link del "$hif" 2>/dev/null || true
    ip link add "$hif" type veth peer name "${hif%h}n"
    ip link set "${hif%h}n" netns "$ns"
    ip -n "$ns" link set "${hif%h}n" name eth0
  fi
  ip address replace "$(host_addr "$m")/30" dev "$hif"
  ip link set "$hif" up
  ip -n "$ns" address replace "$(machine_addr "$m")/30" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route replace default via "$(host_addr "$m")"
  if ! ip -n "$ns" link show lan0 >/dev/null 2>&1; then
    ip -n "$LAN_NS" link del "$lif" 2>/dev/null || true
    ip link add "$lif" type veth peer name "${lif%l}m"
    ip link set "$lif" netns "$LAN_NS"
    ip link set "${lif%l}m" netns "$ns"
    ip -n "$ns" link set "${lif%l}m" name lan0
  fi
  ip -n "$LAN_NS" link set "$lif" master br0 up
  ip -n "$ns" address replace "$(lan_addr "$m")/24" dev lan0
  ip -n "$ns" link set lan0 up
  echo "$ns" >"$(mdir "$m")/netns"
}

# dockerd inside the netns (nsenter --net only: `ip netns exec` would hide the cgroup mounts), owning
# everything under the machine's directory; its cgroups and containerd namespaces are its own.
ensure_dockerd() {
  local m=$1 d sock i
  d=$(mdir "$m") sock=$(docker_sock "$m")
  if owned_pid "$d/docker.pid" "$d/docker" >/dev/null && mdocker "$m" version >/dev/null 2>&1; then return 0; fi
  rm -f "$d/docker.pid"
  detach "$d/dockerd.log" nsenter --net="/var/run/netns/$(netns "$m")" -- dockerd \
    --data-root "$d/docker/data" --exec-root "$d/docker/exec" --pidfile "$d/docker.pid" \
    -H "unix://$sock" --cgroup-parent "ployz-fleet-$FLEET-$m" \
    --containerd-namespace "ployz-fleet-$FLEET-$m" --containerd-plugins-namespace "ployz-fleet-$FLEET-$m-plugins"
  for ((i = 0; i < 600; i++)); do
    mdocker "$m" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -20 "$d/dockerd.log" >&2
  die "$m: dockerd did not answer on $sock within 60 s (log $d/dockerd.log)"
}

# The refs whose id in <m>'s engine differs from the host's (missing or older).
missing_images() {
  local m=$1 ref want have
  for ref in "${IMAGES[@]}"; do
    want=$(docker image inspect -f '{{.Id}}' "$ref")
    have=$(mdocker "$m" image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
    [ "$want" = "$have" ] || echo "$ref"
  done
}

# ployzd inside the netns, detached; `bash -c 'echo $$ …; exec'` records the PID that becomes node.
ensure_ployzd() {
  local m=$1 d i c args=()
  d=$(mdir "$m")
  if owned_pid "$d/ployzd.pid" "$(ployzd_sock "$m")" >/dev/null; then return 0; fi
  for c in "${COMPONENTS[@]}"; do args+=("--image-$c" "$(mdocker "$m" image inspect -f '{{.Id}}' "ployz/$c:latest")"); done
  mkdir -p "$d/state"
  detach "$d/ployzd.log" nsenter --net="/var/run/netns/$(netns "$m")" -- bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$d/ployzd.pid" \
    node --conditions=ployz-source "$PLOYZ_ROOT/apps/ployzd/src/main.ts" run \
    --state-dir "$d/state" --socket-path "$(ployzd_sock "$m")" --docker-socket "$(docker_sock "$m")" \
    --gateway-port "$GW_PORT" --gateway-host-ip "$(machine_addr "$m")" \
    --wireguard-port "$WG_PORT" --lan-address "$(lan_addr "$m")" --join-port "$JOIN_PORT" \
    "${args[@]}"
  for ((i = 0; i < 300; i++)); do
    mctl "$m" status --json >/dev/null 2>&1 && return 0
    owned_pid "$d/ployzd.pid" "$(ployzd_sock "$m")" >/dev/null || [ "$i" -lt 20 ] || break
    sleep 0.2
  done
  tail -20 "$d/ployzd.log" >&2
  die "$m: ployzd did not answer on $(ployzd_sock "$m") (log $d/ployzd.log)"
}

initialised() { [ "$(mctl "$1" status --json 2>/dev/null | json 'j=>j.initialised===true')" = true ]; }

# Retries while ployzd brings up what the command needs (NATS, its record, the join listener).
retry() {
  local what=$1 tries=$2 out i
  shift 2
  for ((i = 0; i < tries; i++)); do
    out=$("$@" 2>&1) && { printf '%s\n' "$out"; return 0; }
    sleep 1
  done
  printf '%s\n' "$out" >&2
  die "$what failed after $tries tries"
}

# Waits until `m` lists every machine of the fleet (the one store, read from m) and m1 reaches it.
wait_listed() {
  local m=$1 want=$2 i seen
  for ((i = 0; i < 180; i++)); do
    seen=$(mctl "$m" machine ls --json 2>/dev/null | json "j=>j.machines.filter(x=>x.lifecycle!=='removed').map(x=>x.id+(x.live.reachable?'':'?')).sort().join(' ')" || true)
    [ "$seen" = "$want" ] && return 0
    sleep 1
  done
  die "$m lists '${seen:-nothing}', not '$want' (a ? marks a machine it does not reach)"
}

cmd_up() {
  local n=${1:-3} m i pids=() missing tar want
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= MAX_MACHINES)) || die "up: N must be 1…$MAX_MACHINES, got $n"
  for m in "${IMAGES[@]}"; do
    docker image inspect "$m" >/dev/null 2>&1 || die "image $m is missing on this host: bash scripts/images.sh"
  done
  mkdir -p "$DIR"
  ensure_lan
  local all=() have
  mapfile -t have < <(machines)
  for ((i = 1; i <= n; i++)); do all+=("m$i"); done
  for m in "${have[@]}"; do [[ " ${all[*]} " == *" $m "* ]] || all+=("$m"); done
  for m in "${all[@]}"; do
    mkdir -p "$(mdir "$m")"
    ensure_netns "$m"
  done
  say "dockerd on ${all[*]}"
  for m in "${all[@]}"; do ensure_dockerd "$m" & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || die "a dockerd did not start"; done
  # Images: saved once from the host's engine, loaded only where an id differs (cached by image id).
  local need=()
  for m in "${all[@]}"; do [ -z "$(missing_images "$m")" ] || need+=("$m"); done
  if ((${#need[@]})); then
    tar="$DIR/images.tar"
    say "loading ${IMAGES[*]} into ${need[*]}"
    docker save -o "$tar" "${IMAGES[@]}"
    pids=()
    for m in "${need[@]}"; do mdocker "$m" load -q -i "$tar" >/dev/null & pids+=($!); done
    for i in "${pids[@]}"; do wait "$i" || die "docker load failed"; done
    rm -f "$tar"
  fi
  pids=()
  say "ployzd on ${all[*]}"
  for m in "${all[@]}"; do ensure_ployzd "$m" & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || die "a ployzd did not start"; done
  if ! initialised m1; then
    say "m1: machine init"
    retry "machine init on m1" 30 mctl m1 machine init --id m1 --installation "fleet-$FLEET" >/dev/null
  fi
  for m in "${all[@]}"; do
    [ "$m" = m1 ] || initialised "$m" && continue
    say "$m: machine join (an invite from m1)"
    # A fresh invite per attempt: a token is single-use.
    local token joined=""
    for ((i = 0; i < 5; i++)); do
      token=$(retry "machine invite on m1" 120 mctl m1 machine invite --ttl 10m --json | json 'j=>j.token')
      joined=$(mctl "$m" machine join "$token" --id "$m" 2>&1) && break
      joined="failed: $joined"
      sleep 1
    done
    [[ $joined != failed:* ]] || die "machine join on $m: ${joined#failed: }"
  done
  want=$(printf '%s\n' "${all[@]}" | sort | tr '\n' ' ')
  want=${want% }
  say "waiting until every machine lists $want"
  for m in "${all[@]}"; do wait_listed "$m" "$want"; done
  cmd_ls
}

cmd_ls() {
  local m d
  printf '%-4s %-10s %-13s %-20s %-8s %-8s %s\n' MACH NETNS LAN GATEWAY DOCKERD PLOYZD LAN-LINK
  for m in $(machines); do
    d=$(mdir "$m")
    printf '%-4s %-10s %-13s %-20s %-8s %-8s %s\n' "$m" "$(netns "$m")" "$(lan_addr "$m")" "$(cmd_gw "$m")" \
      "$(owned_pid "$d/docker.pid" "$d/docker" || echo -)" "$(owned_pid "$d/ployzd.pid" "$(ployzd_sock "$m")" || echo -)" \
      "$(ip -n "$(netns "$m")" -br link show lan0 2>/dev/null | awk '{print $2}' || echo -)"
  done
}

cmd_gw() {
  local m=$1
  index "$m" >/dev/null
  if [ "$GW_PORT" = 80 ]; then echo "http://$(machine_addr "$m")/"; else echo "http://$(machine_addr "$m"):$GW_PORT/"; fi
}

# Kills every process in a cgroup this fleet named (a container whose shim is gone).
kill_cgroup() {
  local name=$1 f pid
  for f in /sys/fs/cgroup/pids/"$name"/cgroup.procs /sys/fs/cgroup/pids/"$name"/*/cgroup.procs \
    /sys/fs/cgroup/"$name"/cgroup.procs /sys/fs/cgroup/"$name"/*/cgroup.procs; do
    [ -r "$f" ] || continue
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$f"
  done
  for f in /sys/fs/cgroup/*/"$name"/* /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"/* /sys/fs/cgroup/"$name"; do
    [ -d "$f" ] && rmdir "$f" 2>/dev/null || true
  done
}

down_machine() {
  local m=$1 d ns pid round ids
  d=$(mdir "$m") ns=$(netns "$m")
  if pid=$(owned_pid "$d/ployzd.pid" "$(ployzd_sock "$m")"); then stop_pid "$pid" 15; fi
  # Containers first, so their shims do not outlive the engine.
  if mdocker "$m" version >/dev/null 2>&1; then
    ids=$(mdocker "$m" ps -aq || true)
    [ -z "$ids" ] || mdocker "$m" rm -f $ids >/dev/null 2>&1 || true
  fi
  if pid=$(owned_pid "$d/docker.pid" "$d/docker"); then stop_pid "$pid" 20; fi
  kill_cgroup "ployz-fleet-$FLEET-$m"
  # Whatever still runs in the netns this fleet made (containerd, shims).
  if [ -e "/var/run/netns/$ns" ]; then
    for ((round = 0; round < 20; round++)); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -n "$pids" ] || break
      kill "-$([ "$round" = 0 ] && echo TERM || echo KILL)" $pids 2>/dev/null || true
      sleep "$([ "$round" = 0 ] && echo 0.5 || echo 0.1)"
    done
    ip netns del "$ns"
  fi
  ip link del "$(host_if "$m")" 2>/dev/null || true
  # dockerd leaves mounts under its roots: unmount them, deepest first, then remove the directory.
  awk -v d="$d" '$2 == d || index($2, d "/") == 1 {print length($2), $2}' /proc/mounts | sort -rn | cut -d' ' -f2- |
    while read -r target; do umount -l "$target" 2>/dev/null || true; done
  rm -rf "$d"
}

cmd_down() {
  local m
  for m in $(machines); do say "$m: down"; down_machine "$m"; done
  if [ -e "/var/run/netns/$LAN_NS" ]; then ip netns del "$LAN_NS"; fi
  rm -rf "$DIR" "$DIR.lock"
  say "down: nothing of fleet $FLEET is left"
}

[ $# -ge 1 ] || { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
command=$1
shift
case $command in
  ctl | docker | gw | cut | heal)
    [ $# -ge 1 ] || die "$command needs a machine (m1…)"
    m=$1
    shift
    index "$m" >/dev/null
    ;;
esac
case $command in
  up | down)
    [ "$(id -u)" = 0 ] || die "$command needs root (network namespaces, dockerd)"
    mkdir -p "$(dirname "$DIR")"
    exec 9>"$DIR.lock"
    flock 9
    "cmd_$command" "$@"
    ;;
  ls) cmd_ls ;;
  ctl) known "$m"; mctl "$m" "$@" ;;
  docker) known "$m"; mdocker "$m" "$@" ;;
  gw) cmd_gw "$m" ;;
  cut) known "$m"; ip -n "$(netns "$m")" link set lan0 down; say "$m is off the LAN (heal $m brings it back)" ;;
  heal) known "$m"; ip -n "$(netns "$m")" link set lan0 up; say "$m is back on the LAN" ;;
  *) die "unknown command $command (up [N] | ctl | docker | gw | cut | heal | ls | down)" ;;
esac
