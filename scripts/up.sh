#!/usr/bin/env bash
# The product's main job on this machine. Today: provision everything (setup), build every image
# locally (images), and show what is there. Starting ployzd, initialising the machine and deploying
# examples/hello.toml are added here as those parts land.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PLOYZ_ROOT"

bash scripts/setup.sh
hash -r
bash scripts/images.sh

printf '\nup: what is here\n'
printf '  %-28s %s\n' "toolchain" "node $(node --version), pnpm $(pnpm --version), $(docker version --format 'docker {{.Server.Version}}')"
for pair in ployzd:ployz/ployzd gateway:ployz/gateway dns:ployz/dns ployzctl:ployz/ployzctl; do
  image=${pair#*:}
  version=$(docker run --rm "$image" --version 2>&1 | head -n 1) || version="(does not start: $version)"
  printf '  %-28s %s\n' "$image:latest" "$version"
done
for image in ployz/base:bookworm-node24 ployz/nats:latest ployz/networking:latest ployz/hello:latest; do
  printf '  %-28s %s\n' "$image" "$(docker image inspect -f '{{.Id}}' "$image" | cut -c8-19)"
done
# ployzd in the background (unless one answers already), `ployzctl machine init` (an initialised
# machine is fine) and `ployzctl status`: apps/ployzd/bin/ployzd-up.sh (PLOYZ_* env configures it).
printf '\nup: ployzd\n'
bash apps/ployzd/bin/ployzd-up.sh
cat <<'TXT'

up: not done yet by this command: deploying examples/hello.toml.
TXT
