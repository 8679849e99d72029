/**
 * The dir driver: plain directories `R/<ns>/<vol>`, for machines without ZFS or btrfs. It has no
 * snapshots (so data will not revert on a rollback) and no quota: both are refused with
 * STORAGE_UNSUPPORTED rather than pretended, so a caller can say so before it starts.
 */
import { chmod, chown, lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PloyzError } from '@ployz/types';
import {
  checkCreate,
  checkQuota,
  checkSnapshotLabel,
  nameUnderRoot,
  parseVolumeName,
  retiredPath,
} from './names.ts';
import type {
  CloneVolume,
  CreateVolume,
  DriverCapabilities,
  ProbeResult,
  RetireResult,
  RevertResult,
  SnapshotInfo,
  Usage,
  Volume,
  VolumeDriver,
} from './port.ts';

export interface DirDriverOptions {
  /** An absolute directory; created by probe() when missing. */
  root: string;
}

const CAPABILITIES: DriverCapabilities = { snapshots: false, quota: false };

function unsupported(what: string, dataset: string): PloyzError {
  return new PloyzError(
    'STORAGE_UNSUPPORTED',
    `${what} on ${dataset}: the dir driver has no snapshots, so its data will not revert; use zfs or btrfs storage for that`,
    { details: { dataset, driver: 'dir' } },
  );
}

/** Bytes on disk under a directory, without following symlinks. */
async function diskUsage(path: string): Promise<number> {
  const s = await lstat(path);
  let total = s.blocks * 512;
  if (s.isDirectory()) {
    for (const entry of await readdir(path)) total += await diskUsage(join(path, entry));
  }
  return total;
}

export function dirDriver(options: DirDriverOptions): VolumeDriver {
  const root = options.root.replace(/\/+$/, '');
  if (!root.startsWith('/') || root.split('/').includes('..')) {
    throw new PloyzError(
      'STORAGE_INVALID',
      `dir root ${JSON.stringify(options.root)} must be an absolute path`,
      {
        details: { root: options.root },
      },
    );
  }

  async function existing(dataset: string): Promise<string> {
    nameUnderRoot(root, dataset);
    const s = await stat(dataset).catch(() => undefined);
    if (!s?.isDirectory()) {
      throw new PloyzError('NOT_FOUND', `volume ${dataset} does not exist`, { details: { dataset } });
    }
    return dataset;
  }

  return {
    kind: 'dir',
    capabilities: CAPABILITIES,

    async probe(): Promise<ProbeResult> {
      await mkdir(root, { recursive: true, mode: 0o755 });
      return { kind: 'dir', root, implementation: 'directories', capabilities: CAPABILITIES };
    },

    async create(spec: CreateVolume): Promise<Volume> {
      const name = checkCreate(spec);
      const path = join(root, name.namespace, name.volume);
      if (spec.quotaBytes !== null) {
        throw new PloyzError(
          'STORAGE_UNSUPPORTED',
          `volume ${name.full} asks for a ${spec.quotaBytes}-byte quota: the dir driver cannot enforce quotas; use zfs or btrfs storage, or no quota`,
          { details: { name: name.full, driver: 'dir' } },
        );
      }
      await mkdir(join(root, name.namespace), { recursive: true, mode: 0o755 });
      try {
        await mkdir(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new PloyzError(
            'STORAGE_EXISTS',
            `volume ${name.full} already exists (${path}); adopt it instead`,
            {
              details: { dataset: path },
              cause: error,
            },
          );
        }
        throw error;
      }
      await chown(path, spec.owner.uid, spec.owner.gid);
      await chmod(path, spec.mode);
      return { dataset: path, path };
    },

    async open(nameText: string): Promise<Volume | undefined> {
      const name = parseVolumeName(nameText);
      const path = join(root, name.namespace, name.volume);
      const s = await stat(path).catch(() => undefined);
      return s?.isDirectory() ? { dataset: path, path } : undefined;
    },

    async snapshot(dataset: string, label: string): Promise<SnapshotInfo> {
      checkSnapshotLabel(label);
      throw unsupported('a snapshot', await existing(dataset));
    },

    async snapshots(dataset: string): Promise<SnapshotInfo[]> {
      await existing(dataset);
      return [];
    },

    async revert(dataset: string, _snapshotId: string): Promise<RevertResult> {
      throw unsupported('a revert', await existing(dataset));
    },

    async clone(source: string, _snapshotId: string, _spec: CloneVolume): Promise<Volume> {
      throw unsupported('a clone', await existing(source));
    },

    async originOf(dataset: string): Promise<string | null> {
      await existing(dataset);
      return null;
    },

    async replace(dataset: string, _source: string, _snapshotId: string): Promise<RevertResult> {
      throw unsupported('a replace', await existing(dataset));
    },

    async destroySnapshot(dataset: string, _snapshotId: string): Promise<void> {
      throw unsupported('a snapshot', await existing(dataset));
    },

    async growQuota(dataset: string, quotaBytes: number): Promise<Usage> {
      checkQuota(quotaBytes);
      throw new PloyzError(
        'STORAGE_UNSUPPORTED',
        `a quota on ${await existing(dataset)}: the dir driver cannot enforce quotas; use zfs or btrfs storage`,
        { details: { dataset, driver: 'dir' } },
      );
    },

    async usage(dataset: string): Promise<Usage> {
      return { usedBytes: await diskUsage(await existing(dataset)), quotaBytes: null };
    },

    async destroy(dataset: string): Promise<void> {
      nameUnderRoot(root, dataset);
      await rm(dataset, { recursive: true, force: true });
    },

    /** No snapshots here: the directory itself is moved to `.retired` (nothing is freed). */
    async retire(dataset: string, label: string): Promise<RetireResult> {
      const name = nameUnderRoot(root, await existing(dataset));
      const kept = retiredPath(root, name, label);
      if (await lstat(kept).catch(() => undefined)) {
        throw new PloyzError(
          'STORAGE_EXISTS',
          `a retired copy ${kept} already exists; it was left as it is`,
          {
            details: { dataset, kept },
          },
        );
      }
      await mkdir(join(root, '.retired', name.namespace), { recursive: true, mode: 0o700 });
      await rename(dataset, kept);
      return {
        snapshot: null,
        kept,
        note: `the dir driver cannot snapshot, so the whole directory is kept as it was (no space is freed). Free it with: rm -rf ${kept}`,
      };
    },
  };
}
