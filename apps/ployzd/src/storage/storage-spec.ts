/**
 * The machine's storage choice, as given to `ployzctl machine init --storage`: `zfs:<pool>`,
 * `btrfs:<path>` or `dir:<path>`, parsed once into a spec and turned into its driver.
 * ZFS volumes live under `<pool>/ployz` (DESIGN §8: `<pool>/ployz/<ns>/<volume>`).
 */
import { join } from 'node:path';
import { PloyzError } from '@ployz/types';
import { btrfsDriver } from './btrfs.ts';
import { dirDriver } from './dir.ts';
import type { RunOptions } from './exec.ts';
import type { VolumeDriver } from './port.ts';
import { zfsDriver } from './zfs.ts';

export type StorageSpec =
  | { kind: 'zfs'; pool: string; root: string }
  | { kind: 'btrfs'; root: string }
  | { kind: 'dir'; root: string };

const POOL = /^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/;

export function parseStorageSpec(text: string): StorageSpec {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const value = colon < 0 ? '' : text.slice(colon + 1);
  const bad = (why: string) =>
    new PloyzError(
      'STORAGE_INVALID',
      `--storage ${JSON.stringify(text)}: ${why}; use zfs:<pool>, btrfs:<path> or dir:<path>`,
      {
        details: { storage: text },
      },
    );
  switch (kind) {
    case 'zfs':
      if (!POOL.test(value)) throw bad('a zfs pool name starts with a letter');
      return { kind: 'zfs', pool: value, root: `${value}/ployz` };
    case 'btrfs':
    case 'dir':
      if (!value.startsWith('/') || value.split('/').includes('..')) throw bad('the path must be absolute');
      return { kind, root: value.replace(/(.)\/+$/, '$1') };
    default:
      throw bad(`unknown driver ${JSON.stringify(kind)}`);
  }
}

/** A machine without a storage choice keeps plain directories under its state dir (no snapshots). */
export function defaultStorage(stateDir: string): string {
  return `dir:${join(stateDir, 'volumes')}`;
}

export function volumeDriver(spec: StorageSpec, options: RunOptions = {}): VolumeDriver {
  switch (spec.kind) {
    case 'zfs':
      return zfsDriver({ ...options, root: spec.root });
    case 'btrfs':
      return btrfsDriver({ ...options, root: spec.root });
    case 'dir':
      return dirDriver({ root: spec.root });
    default: {
      const never: never = spec;
      throw new Error(`unknown storage spec ${JSON.stringify(never)}`);
    }
  }
}
