#!/usr/bin/env bash
# The product's main job on this machine: provision everything (setup), build every image locally
# (images), start ployzd and initialise a single-node cluster, deploy examples/hello.toml and show
# it answered through ployz-gateway.
#   bash scripts/up.sh --join <token>   on a second machine: the same, but `machine join <token>`
#                                       (from `ployzctl machine invite` on a member) instead of
#                                       init, and no example deploy (docs/fleet.md).
#   --registry <host[:port]>            (or PLOYZ_IMAGE_REGISTRY) pull the data-plane images
#                                       <registry>/ployz/<component>:<version> instead of building
#                                       them here (pushed by scripts/images.sh --push; docs/fleet.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PLOYZ_ROOT"

join_token=""
while [ $# -gt 0 ]; do
  case "$1" in
    --join) [ $# -ge 2 ] || { echo "up: --join needs the token from ployzctl machine invite" >&2; exit 2; }; join_token=$2; shift 2 ;;
    --join=*) join_token=${1#--join=}; shift ;;
    --registry) [ $# -ge 2 ] || { echo "up: --registry needs host[:port]" >&2; exit 2; }; export PLOYZ_IMAGE_REGISTRY=$2; shift 2 ;;
    --registry=*) export PLOYZ_IMAGE_REGISTRY=${1#--registry=}; shift ;;
    *) echo "up: unknown argument $1 (usage: bash scripts/up.sh [--join <token>] [--registry <host[:port]>])" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
hash -r
registry=${PLOYZ_IMAGE_REGISTRY:-}
if [ -n "$registry" ]; then
  # ployzd (from this checkout) pulls its data plane from the registry at the reconcile; the images
  # it runs are <registry>/ployz/<component>:<version>. Only the example app is built here.
  printf 'up: data-plane images from %s (PLOYZ_IMAGE_REGISTRY): pulled by ployzd, not built\n' "$registry"
  [ -n "$join_token" ] || bash scripts/images.sh hello
else
  bash scripts/images.sh
fi

printf '\nup: what is here\n'
printf '  %-28s %s\n' "toolchain" "node $(node --version), pnpm $(pnpm --version), $(docker version --format 'docker {{.Server.Version}}')"
for pair in ployzd:ployz/ployzd gateway:ployz/gateway dns:ployz/dns ployzctl:ployz/ployzctl; do
  [ -z "$registry" ] || break
  image=${pair#*:}
  version=$(docker run --rm "$image" --version 2>&1 | head -n 1) || version="(does not start: $version)"
  printf '  %-28s %s\n' "$image:latest" "$version"
done
for image in ployz/base:bookworm-node24 ployz/nats:latest ployz/networking:latest ployz/hello:latest; do
  docker image inspect "$image" >/dev/null 2>&1 || continue
  printf '  %-28s %s\n' "$image" "$(docker image inspect -f '{{.Id}}' "$image" | cut -c8-19)"
done
# ployzd as a service (a systemd unit when systemd runs, else ployzd-supervise.sh; unless one
# answers already), `ployzctl machine init` (an initialised
# machine is fine) and `ployzctl status`: apps/ployzd/bin/ployzd-up.sh (PLOYZ_* env configures it).
printf '\nup: ployzd\n'
# The token reaches ployzd-up.sh in a 0600 file, never in the environment (ployzd.env keeps PLOYZ_*).
if [ -n "$join_token" ]; then
  token_file=$(mktemp)
  trap 'rm -f "$token_file"' EXIT
  chmod 600 "$token_file"
  printf '%s\n' "$join_token" >"$token_file"
  UP_JOIN_TOKEN_FILE=$token_file bash apps/ployzd/bin/ployzd-up.sh
  ln -sfn "$PLOYZ_ROOT/scripts/ployzctl" /usr/local/bin/ployzctl
  printf '\nup: done: this machine joined (ployzctl machine show; ployzctl status)\n'
  exit 0
fi
bash apps/ployzd/bin/ployzd-up.sh
# Deploy examples/hello.toml (a no-op when it is already deployed) and show it answered through
# ployz-gateway. `ployzctl deploy` prints the nine apply steps as they happen.
# The CLI on PATH for the operator: /usr/local/bin/ployzctl → scripts/ployzctl (this checkout).
ln -sfn "$PLOYZ_ROOT/scripts/ployzctl" /usr/local/bin/ployzctl
ployzctl() { "$PLOYZ_ROOT/scripts/ployzctl" "$@"; }
printf '\nup: deploy examples/hello.toml\n'
for _ in $(seq 1 150); do ployzctl deploy ls >/dev/null 2>&1 && break; sleep 0.2; done
ployzctl deploy -f examples/hello.toml
port=${PLOYZ_GATEWAY_PORT:-80}
url="http://127.0.0.1${port/#/:}/"
[ "$port" = 80 ] && url="http://127.0.0.1/"
answer=""
for _ in $(seq 1 100); do
  answer=$(curl -fsS -m 2 -H 'Host: hello.localhost' "$url" 2>/dev/null) && break
  sleep 0.1
done
[ -n "$answer" ] || { echo "up: the gateway did not answer for hello.localhost on $url; see ployzctl status" >&2; exit 1; }
printf '\nup: done. Try it:\n  $ curl -H '"'"'Host: hello.localhost'"'"' %s\n  %s\n' "$url" "$answer"
printf '  (ployzctl is on PATH: ployzctl status; ployzctl deploy ls; edit examples/hello.toml, then\n'
printf '   ployzctl deploy preview -f examples/hello.toml and ployzctl deploy -f examples/hello.toml)\n'
