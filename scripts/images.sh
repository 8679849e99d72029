#!/usr/bin/env bash
# Builds every Ployz container image locally, with no registry pull:
#
#   ployz/rootfs:bookworm            debootstrap bookworm minbase, `docker import`ed (tarball cached in /var/cache/ployz)
#   ployz/base:bookworm-node24       rootfs + the project's own Node binary + a non-root user `ployz` (10001)
#   ployz/nats:latest                rootfs + Debian's nats-server
#   ployz/networking:latest          rootfs + wireguard-go, wg, ip, iptables; entry owns wg0 (images/README.md)
#   ployz/hello:latest               base + a tiny HTTP example app
#   ployz/{ployzd,gateway,dns,ployzctl}:latest   base + that app's production deployment (apps/<app>/Dockerfile)
#
# Every image is also tagged `h-<hash>`, a hash of everything that goes into it (its base and the
# workspace version included), and is skipped when that tag exists: a rebuild with no change takes
# seconds. Released images (base, nats, networking, ployzd, gateway, dns, ployzctl; not hello) are
# also tagged `<version>` and `<version>-<rev>` (version: the root package.json; rev: the short git
# revision the image was built at, `-dirty` when its inputs had uncommitted changes) and carry the
# OCI labels org.opencontainers.image.version/.revision/.source.
#
#   --push <registry>   after building, push every released image as <registry>/ployz/<app>:<version>,
#                       :<version>-<rev> and :latest (a 127.0.0.0/8 registry works over plain HTTP)
#
# Idempotent; safe to run concurrently (a lock serialises builds).
# Usage: bash scripts/images.sh [--force] [--push <registry>] [image ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PLOYZ_ROOT"

die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'images: %s\n' "$*"; }

FORCE=0
PUSH=""
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --push)
      [ $# -ge 2 ] && [ -n "$2" ] || die "--push needs a registry (host:port, e.g. 127.0.0.1:5000)"
      PUSH=$2
      shift
      ;;
    --push=*) PUSH=${1#--push=}; [ -n "$PUSH" ] || die "--push needs a registry (host:port, e.g. 127.0.0.1:5000)" ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (try --help)" ;;
    *) ONLY+=("$1") ;;
  esac
  shift
done
# A registry is a host with a dot, a colon or `localhost`, with no scheme and no path (Docker's rule).
if [ -n "$PUSH" ]; then
  PUSH=${PUSH%/}
  case "$PUSH" in
    http://* | https://*) die "--push takes host[:port], not a URL: ${PUSH#*://}" ;;
    */*) die "--push takes host[:port] with no path: ${PUSH%%/*}" ;;
  esac
  [[ "$PUSH" == *.* || "$PUSH" == *:* || "$PUSH" == localhost ]] \
    || die "--push $PUSH is not a registry host (it needs a dot, a port or localhost: $PUSH:5000)"
fi

command -v docker >/dev/null || die "docker is not installed; run: bash scripts/setup.sh"
docker version >/dev/null 2>&1 || die "no Docker engine answers; run: bash scripts/setup.sh (it starts dockerd)"
command -v node >/dev/null || die "node is missing; run: bash scripts/setup.sh"

SUITE=bookworm
CACHE_DIR=${PLOYZ_IMAGE_CACHE:-/var/cache/ployz}
STAGE_DIR="$PLOYZ_ROOT/.cache/images"
LOG_DIR="$STAGE_DIR/logs"
mkdir -p "$CACHE_DIR" "$STAGE_DIR" "$LOG_DIR"

# One build at a time on this machine (several shells may run the test suite at once).
exec 9>/tmp/ployz-images.lock
flock 9

# The Debian mirror this machine already uses, so the rootfs comes from where apt gets its packages.
debian_mirror() {
  if [ -n "${PLOYZ_DEBIAN_MIRROR:-}" ]; then echo "$PLOYZ_DEBIAN_MIRROR"; return; fi
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# A short, stable hash over the names and contents of files (directories are walked; tests, build
# output and dependencies are left out) plus any extra strings given after `--`.
hash_inputs() {
  local paths=() extra=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do paths+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  extra=("$@")
  {
    printf '%s\n' "${extra[@]}"
    if [ ${#paths[@]} -gt 0 ]; then
      find "${paths[@]}" -type f ! -name '*.test.ts' ! -path '*/test/*' ! -path '*/node_modules/*' ! -path '*/dist/*' \
        ! -path '*/.turbo/*' -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 -r sha256sum
    fi
  } | sha256sum | cut -c1-16
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The release: one version for the whole workspace (root package.json; every app's package.json
# agrees, checked by packages/protocol's release test), the revision images are built at, the source.
VERSION=$(node -p 'require("./package.json").version' 2>/dev/null || true)
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-.][0-9A-Za-z.]+)?$ ]] \
  || die "package.json has no version like 1.2.3 (got '${VERSION}'); the images are tagged with it"
GIT_REV=$(git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE=${PLOYZ_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo https://github.com/getployz/ployz)}
VERSION_LABEL=org.opencontainers.image.version
REVISION_LABEL=org.opencontainers.image.revision
# revision_of PATH...: the git revision, `-dirty` when any of these inputs differs from it.
revision_of() {
  local rev=$GIT_REV
  if [ "$rev" != unknown ] && [ $# -gt 0 ] && [ -n "$(git status --porcelain -- "$@" 2>/dev/null)" ]; then
    rev="$rev-dirty"
  fi
  echo "$rev"
}
# release_tags REPO REF: tag REF as REPO:<version> and REPO:<version>-<short rev of its label>.
RELEASED=()
release_tags() {
  local repo=$1 ref=$2 rev short
  rev=$(docker image inspect "$ref" --format "{{ index .Config.Labels \"$REVISION_LABEL\" }}" 2>/dev/null || true)
  short=${rev:0:12}
  case "$rev" in *-dirty) short="$short-dirty" ;; esac
  docker tag "$ref" "$repo:$VERSION"
  docker tag "$ref" "$repo:latest"
  [ -z "$rev" ] || [ "$rev" = unknown ] || docker tag "$ref" "$repo:$VERSION-$short"
  # Older revisions' tags of this version that name another image go.
  local id old
  id=$(docker image inspect "$ref" --format '{{.Id}}')
  for old in $(docker image ls "$repo" --format '{{.Tag}}'); do
    case "$old" in
      "$VERSION"-*) [ "$(docker image inspect "$repo:$old" --format '{{.Id}}')" = "$id" ] \
        || docker image rm "$repo:$old" >/dev/null 2>&1 || true ;;
    esac
  done
  RELEASED+=("$repo")
}

wanted() {
  [ ${#ONLY[@]} -eq 0 ] && return 0
  local x
  for x in "${ONLY[@]}"; do [ "$x" = "$1" ] && return 0; done
  return 1
}

BUILT=()
prepare_nothing() { :; }
# build_image REPO STABLE_TAG HASH PREPARE_FN DOCKERFILE CONTEXT [BUILD_ARG ...]
# Skips when REPO:h-HASH exists; otherwise runs PREPARE_FN (stages the context), then builds.
# RELEASE_INPUTS (the image's source paths, for the revision's `-dirty`) set: a released image,
# labelled and tagged with the version; unset (hello): a test image.
build_image() {
  local repo=$1 stable=$2 hash=$3 prepare=$4 dockerfile=$5 context=$6
  shift 6
  local ref="$repo:h-$hash" logf="$LOG_DIR/${repo//\//_}.log" args=() labels=()
  local a released=${RELEASE_INPUTS+yes}
  for a in "$@"; do args+=(--build-arg "$a"); done
  if [ "$FORCE" = 0 ] && have_image "$ref"; then
    docker tag "$ref" "$repo:$stable"
    [ -z "$released" ] || release_tags "$repo" "$ref"
    log "$repo:$stable up to date (h-$hash)"
    return
  fi
  if [ -n "$released" ]; then
    # shellcheck disable=SC2086 # a list of paths
    labels=(--label "$VERSION_LABEL=$VERSION" --label "$REVISION_LABEL=$(revision_of $RELEASE_INPUTS)"
      --label "org.opencontainers.image.source=$SOURCE" --label "org.opencontainers.image.title=$repo")
  fi
  log "building $repo:$stable (h-$hash)"
  local t0=$SECONDS
  "$prepare" >"$logf" 2>&1 || { tail -n 40 "$logf" >&2; die "staging $repo failed (full log: $logf)"; }
  DOCKER_BUILDKIT=0 docker build --pull=false --label "ployz.input-hash=$hash" "${labels[@]}" -t "$ref" \
    -t "$repo:$stable" "${args[@]}" -f "$dockerfile" "$context" >>"$logf" 2>&1 \
    || { tail -n 40 "$logf" >&2; die "docker build of $repo failed (full log: $logf)"; }
  [ -z "$released" ] || release_tags "$repo" "$ref"
  # Drop this repo's older content-hash tags; layers still used by a container stay.
  local old
  for old in $(docker image ls "$repo" --format '{{.Tag}}'); do
    case "$old" in h-"$hash") ;; h-*) docker image rm "$repo:$old" >/dev/null 2>&1 || true ;; esac
  done
  BUILT+=("$repo:$stable")
  log "built $repo:$stable in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------------------
# rootfs: debootstrap once per input set, cache the tarball, import it once per tarball content.
ROOTFS_INCLUDE=libcap2-bin,ca-certificates
MIRROR=$(debian_mirror)
ROOTFS_KEY=$(printf '%s\n' "$SUITE" minbase "$ROOTFS_INCLUDE" | sha256sum | cut -c1-12)
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE-minbase-$ROOTFS_KEY.tar"

if [ ! -f "$ROOTFS_TAR" ]; then
  command -v debootstrap >/dev/null || die "debootstrap is missing; run: bash scripts/setup.sh"
  [ "$(id -u)" = 0 ] || die "building the rootfs needs root (debootstrap)"
  log "debootstrap $SUITE minbase from $MIRROR (once; cached in $ROOTFS_TAR)"
  tmp=$(mktemp -d /var/tmp/ployz-rootfs.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  debootstrap --variant=minbase --include="$ROOTFS_INCLUDE" "$SUITE" "$tmp/root" "$MIRROR" \
    >"$LOG_DIR/debootstrap.log" 2>&1 || { tail -n 30 "$LOG_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$tmp"/root/var/cache/apt/archives/*.deb "$tmp"/root/var/lib/apt/lists/* "$tmp"/root/usr/share/doc/* \
    "$tmp"/root/usr/share/man/* "$tmp"/root/usr/share/locale/*
  tar -C "$tmp/root" --numeric-owner --xattrs -cf "$ROOTFS_TAR.partial" .
  mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  sha256sum "$ROOTFS_TAR" | cut -c1-16 >"$ROOTFS_TAR.sha256"
  rm -rf "$tmp"
  trap - EXIT
fi
[ -f "$ROOTFS_TAR.sha256" ] || sha256sum "$ROOTFS_TAR" | cut -c1-16 >"$ROOTFS_TAR.sha256"
ROOTFS_HASH=$(cat "$ROOTFS_TAR.sha256")
ROOTFS_REF="ployz/rootfs:h-$ROOTFS_HASH"
if ! have_image "$ROOTFS_REF"; then
  log "importing $ROOTFS_TAR as ployz/rootfs:$SUITE"
  docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$ROOTFS_TAR" "$ROOTFS_REF" >/dev/null
fi
docker tag "$ROOTFS_REF" "ployz/rootfs:$SUITE"
ROOTFS_IMAGE="ployz/rootfs:$SUITE"

# ---------------------------------------------------------------------------------------------
# base: rootfs + Node (the binary this project runs on, so containers and host agree).
NODE_BIN=$(readlink -f "$(command -v node)")
NODE_VERSION=$(node --version)
BASE_REPO=ployz/base
BASE_TAG="$SUITE-node$(node -p 'process.versions.node.split(".")[0]')"
BASE_HASH=$(hash_inputs images/base -- "rootfs=$ROOTFS_HASH" "node=$NODE_VERSION" "version=$VERSION")
prepare_base() {
  rm -rf "$STAGE_DIR/base" && mkdir -p "$STAGE_DIR/base"
  cp images/base/Dockerfile "$STAGE_DIR/base/"
  # Debug symbols are a quarter of Node's size and of no use in an image.
  if command -v strip >/dev/null; then strip --strip-debug -o "$STAGE_DIR/base/node" "$NODE_BIN"; else cp "$NODE_BIN" "$STAGE_DIR/base/node"; fi
  chmod 0755 "$STAGE_DIR/base/node"
}
RELEASE_INPUTS=images/base build_image "$BASE_REPO" "$BASE_TAG" "$BASE_HASH" prepare_base "$STAGE_DIR/base/Dockerfile" "$STAGE_DIR/base" \
  "ROOTFS=$ROOTFS_IMAGE"
BASE_IMAGE="$BASE_REPO:$BASE_TAG"

# ---------------------------------------------------------------------------------------------
# nats: Debian's nats-server binary (the same one the host and tests use).
if wanted nats; then
  NATS_BIN=$(command -v nats-server || true)
  [ -n "$NATS_BIN" ] || die "nats-server is missing on the host; run: bash scripts/setup.sh"
  NATS_HASH=$(hash_inputs images/nats "$NATS_BIN" -- "rootfs=$ROOTFS_HASH" "version=$VERSION")
  prepare_nats() {
    rm -rf "$STAGE_DIR/nats" && mkdir -p "$STAGE_DIR/nats"
    cp images/nats/* "$STAGE_DIR/nats/"
    cp "$NATS_BIN" "$STAGE_DIR/nats/nats-server"
    chmod 0755 "$STAGE_DIR/nats/nats-server"
  }
  RELEASE_INPUTS=images/nats build_image ployz/nats latest "$NATS_HASH" prepare_nats "$STAGE_DIR/nats/Dockerfile" "$STAGE_DIR/nats" \
    "ROOTFS=$ROOTFS_IMAGE"
fi

# networking: its Dockerfile installs wireguard-go, wireguard-tools, iproute2, iptables from Debian.
if wanted networking; then
  NET_HASH=$(hash_inputs images/networking -- "rootfs=$ROOTFS_HASH" "version=$VERSION")
  RELEASE_INPUTS=images/networking build_image ployz/networking latest "$NET_HASH" prepare_nothing images/networking/Dockerfile images/networking \
    "ROOTFS=$ROOTFS_IMAGE"
fi

# hello: the example app.
if wanted hello; then
  HELLO_HASH=$(hash_inputs images/hello -- "base=$BASE_HASH")
  build_image ployz/hello latest "$HELLO_HASH" prepare_nothing images/hello/Dockerfile images/hello \
    "BASE=$BASE_IMAGE"
fi

# ---------------------------------------------------------------------------------------------
# One image per app: build the app and its workspace dependencies, `pnpm deploy --prod` it into a
# staging directory (production dependencies only), build apps/<app>/Dockerfile from there.
# Every workspace package an app may depend on (all of packages/ but the test harness).
SHARED_INPUTS=(pnpm-lock.yaml package.json pnpm-workspace.yaml tsconfig.base.json)
for pkg in packages/*/; do [ "$pkg" = packages/testkit/ ] || SHARED_INPUTS+=("${pkg%/}"); done
APPS=(ployzd:ployz/ployzd ployz-gateway:ployz/gateway ployz-dns:ployz/dns ployzctl:ployz/ployzctl)
declare -A APP_HASH=()
TURBO_FILTERS=()
for pair in "${APPS[@]}"; do
  dir=${pair%%:*} repo=${pair#*:}
  wanted "${repo#ployz/}" || wanted "$dir" || continue
  [ -f "apps/$dir/Dockerfile" ] || die "apps/$dir/Dockerfile is missing"
  APP_HASH[$dir]=$(hash_inputs "${SHARED_INPUTS[@]}" "apps/$dir" -- "base=$BASE_HASH")
  if [ "$FORCE" = 1 ] || ! have_image "$repo:h-${APP_HASH[$dir]}"; then TURBO_FILTERS+=(--filter "$dir..."); fi
done
# One turbo run builds every app that needs an image (and their workspace dependencies).
if [ ${#TURBO_FILTERS[@]} -gt 0 ]; then
  log "building the apps' TypeScript (turbo)"
  pnpm turbo run build "${TURBO_FILTERS[@]}" --output-logs=errors-only >"$LOG_DIR/turbo.log" 2>&1 \
    || { tail -n 40 "$LOG_DIR/turbo.log" >&2; die "turbo build failed (full log: $LOG_DIR/turbo.log)"; }
fi
prepare_app() {
  rm -rf "${STAGE_DIR:?}/$APP_DIR"
  pnpm --filter "$APP_DIR" deploy --prod --legacy "$STAGE_DIR/$APP_DIR"
  if [ -f "apps/$APP_DIR/.dockerignore" ]; then cp "apps/$APP_DIR/.dockerignore" "$STAGE_DIR/$APP_DIR/"; fi
}
for pair in "${APPS[@]}"; do
  dir=${pair%%:*} repo=${pair#*:}
  [ -n "${APP_HASH[$dir]:-}" ] || continue
  APP_DIR=$dir
  RELEASE_INPUTS="${SHARED_INPUTS[*]} apps/$dir" build_image "$repo" latest "${APP_HASH[$dir]}" prepare_app "apps/$dir/Dockerfile" "$STAGE_DIR/$dir" "BASE=$BASE_IMAGE"
done

if [ ${#BUILT[@]} -eq 0 ]; then log "all images up to date"; else log "built: ${BUILT[*]}"; fi

# ---------------------------------------------------------------------------------------------
# --push: every released image built or checked above, under <registry>/ployz/<app>.
if [ -n "$PUSH" ]; then
  for repo in "${RELEASED[@]}"; do
    src="$repo:$VERSION"
    dst="$PUSH/$repo"
    tags=("$VERSION" latest)
    rev=$(docker image inspect "$src" --format "{{ index .Config.Labels \"$REVISION_LABEL\" }}")
    case "$rev" in '' | unknown) ;; *-dirty) tags+=("$VERSION-${rev:0:12}-dirty") ;; *) tags+=("$VERSION-${rev:0:12}") ;; esac
    for t in "${tags[@]}"; do
      docker tag "$src" "$dst:$t"
      if ! out=$(docker push --quiet "$dst:$t" 2>&1); then
        for x in "${tags[@]}"; do docker image rm "$dst:$x" >/dev/null 2>&1 || true; done
        hint="check that it answers: curl http://$PUSH/v2/"
        [[ "$PUSH" == 127.* || "$PUSH" == localhost* ]] || hint="$hint; dockerd speaks plain HTTP only to 127.0.0.0/8 (else TLS or its insecure-registries)"
        die "docker push $dst:$t failed: $out ($hint)"
      fi
    done
    digest=$(docker image inspect "$src" --format '{{range .RepoDigests}}{{println .}}{{end}}' | grep -F "$dst@" | head -n1)
    log "pushed $dst:{$(IFS=,; echo "${tags[*]}")} ${digest#*@}"
    # The registry-named tags stay only as long as the push needs them.
    for t in "${tags[@]}"; do docker image rm "$dst:$t" >/dev/null 2>&1 || true; done
  done
fi
