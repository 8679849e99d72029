#!/usr/bin/env bash
# The default snapshot-capable volume storage of a fresh machine: a file-backed btrfs filesystem
# under the state dir, loop-mounted at <state>/btrfs. `ensure` creates it once (a sparse image
# sized to a quarter of the free space on the state dir's disk, between 2 GiB and 64 GiB; override
# with PLOYZ_STORAGE_SIZE_GIB) and mounts it again after a reboot; it never reformats an existing
# image (`remount` only mounts an existing one, for boot). Prints the storage spec for `ployzctl machine init --storage` (btrfs:<state>/btrfs/volumes).
# Idempotent; needs root, btrfs-progs and a loop device.
set -euo pipefail
STATE=${PLOYZ_STATE_DIR:-/var/lib/ployz}
IMAGE="$STATE/storage/btrfs.img"
MOUNT="$STATE/btrfs"

case "${1:-ensure}" in
  ensure) ;;
  # At boot (the service's pre-start): mount the image again if this machine has one; else nothing.
  remount)
    if [ -f "$IMAGE" ] && ! mountpoint -q "$MOUNT"; then mkdir -p "$MOUNT" && mount -o loop "$IMAGE" "$MOUNT"; fi
    exit 0
    ;;
  *) echo "usage: ployz-storage.sh ensure | remount" >&2; exit 2 ;;
esac

mkdir -p "$STATE/storage" "$MOUNT"
if ! mountpoint -q "$MOUNT"; then
  if [ ! -f "$IMAGE" ]; then
    free_gib=$(( $(df --output=avail -B1G "$STATE" | tail -1) ))
    size=${PLOYZ_STORAGE_SIZE_GIB:-$(( free_gib / 4 ))}
    [ "$size" -lt 2 ] && size=2
    [ "$size" -gt 64 ] && size=64
    truncate -s "${size}G" "$IMAGE.tmp"
    mkfs.btrfs -q "$IMAGE.tmp" >/dev/null
    mv "$IMAGE.tmp" "$IMAGE"
  fi
  mount -o loop "$IMAGE" "$MOUNT"
fi
mkdir -p "$MOUNT/volumes"
echo "btrfs:$MOUNT/volumes"
