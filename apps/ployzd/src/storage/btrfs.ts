/**
 * The btrfs driver: subvolumes with qgroup limits on a btrfs filesystem (a disk, or a loop-mounted
 * image under /var/lib/ployz).
 *
 * Layout under the root directory R: the live data of `<ns>/<vol>` is the subvolume `R/<ns>/<vol>`
 * (its path is also the handle callers keep); its snapshots are read-only subvolumes
 * `R/.snapshots/<ns>/<vol>/<label>`; a revert builds the next live subvolume in
 * `R/.staging/<ns>/<vol>/`. Names are DNS labels, so `.snapshots` and `.staging` never collide.
 *
 * Revert is a snapshot swap: a read-only `pre-revert-<ms>` snapshot of the live data, a writable
 * snapshot of the target in staging with the live quota, then two renames (live → staging, new →
 * live; the first is undone if the second fails) and the old live subvolume is deleted (its data is
 * the pre-revert snapshot). Snapshots are independent subvolumes, so none is ever touched and each
 * keeps its UUID (the snapshot id): reverting to an older one and then to a newer one works.
 * btrfs cannot tell whether a process still writes to the volume: the caller stops writers first.
 *
 * A branch's volume is a writable snapshot of another volume's read-only snapshot (its Parent UUID
 * is that snapshot's UUID: `originOf`); a promote --with-data is the revert's swap with the other
 * volume's snapshot. Snapshots share extents, never depend on each other: either side can go.
 */
import { chmod, chown, mkdir, readdir, rename, rmdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { PloyzError } from '@ployz/types';
import { type RunOptions, TOOLS, toolRunner } from './exec.ts';
import {
  checkCreate,
  checkQuota,
  checkQuotaNotBelowUsed,
  checkSnapshotLabel,
  nameUnderRoot,
  parseVolumeName,
  retiredPath,
  type VolumeName,
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

export interface BtrfsDriverOptions extends RunOptions {
  /** An absolute directory on a btrfs filesystem. */
  root: string;
}

const BTRFS_SUPER_MAGIC = 0x9123683e;
/** The inode number of every subvolume's root directory. */
const SUBVOLUME_ROOT_INO = 256;
const CAPABILITIES: DriverCapabilities = { snapshots: true, quota: true };

export interface Subvolume {
  uuid: string;
  /** The UUID of the subvolume this one is a snapshot of; null for a subvolume made empty. */
  parentUuid: string | null;
  /** The UUID of the subvolume `btrfs receive` made this one from (its sender's); null when not received. */
  receivedUuid: string | null;
  readonly: boolean;
  subvolumeId: number;
  createdAt: string;
  referenced: number;
  limit: number | null;
}

/** `btrfs subvolume show --raw` → the fields this driver reads. */
export function parseSubvolumeShow(out: string): Subvolume {
  const field = (name: string) => new RegExp(`^\\s*${name}:\\s*(.*)$`, 'm').exec(out)?.[1]?.trim();
  const created = field('Creation time') ?? '';
  // "2026-12-02 01:26:57 +0000" → ISO
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})$/.exec(created);
  const limit = field('Limit referenced');
  const parent = field('Parent UUID');
  const received = field('Received UUID');
  return {
    uuid: field('UUID') ?? '',
    parentUuid: parent === undefined || parent === '-' || parent === '' ? null : parent,
    receivedUuid: received === undefined || received === '-' || received === '' ? null : received,
    readonly: /\breadonly\b/.test(field('Flags') ?? ''),
    subvolumeId: Number(field('Subvolume ID') ?? 0),
    createdAt: m ? new Date(`${m[1]}T${m[2]}${m[3]}:${m[4]}`).toISOString() : new Date(0).toISOString(),
    referenced: Number(field('Usage referenced') ?? 0),
    limit: limit === undefined || limit === '-' || !/^\d+$/.test(limit) ? null : Number(limit),
  };
}

async function isSubvolume(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isDirectory() && s.ino === SUBVOLUME_ROOT_INO;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

export function btrfsDriver(options: BtrfsDriverOptions): VolumeDriver {
  const root = options.root.replace(/\/+$/, '');
  if (!root.startsWith('/') || root.includes('/../') || root.endsWith('/..')) {
    throw new PloyzError(
      'STORAGE_INVALID',
      `btrfs root ${JSON.stringify(options.root)} must be an absolute path`,
      {
        details: { root: options.root },
      },
    );
  }
  const run = toolRunner(options);
  const btrfs = (...args: string[]) => run(TOOLS.btrfs, args);
  let quotaEnabled = false;

  const livePath = (n: VolumeName) => join(root, n.namespace, n.volume);
  const snapshotDir = (n: VolumeName) => join(root, '.snapshots', n.namespace, n.volume);
  const stagingDir = (n: VolumeName) => join(root, '.staging', n.namespace, n.volume);

  async function enableQuota(): Promise<void> {
    if (quotaEnabled) return;
    await btrfs('quota', 'enable', root);
    quotaEnabled = true;
  }

  async function show(path: string): Promise<Subvolume> {
    return parseSubvolumeShow(await btrfs('subvolume', 'show', '--raw', path));
  }

  /** qgroup numbers are updated at a transaction commit: commit first, then read. */
  async function showSynced(path: string): Promise<Subvolume> {
    await btrfs('filesystem', 'sync', path);
    return show(path);
  }

  async function liveOf(dataset: string): Promise<VolumeName> {
    const name = nameUnderRoot(root, dataset);
    if (!(await isSubvolume(livePath(name)))) {
      throw new PloyzError('NOT_FOUND', `volume ${dataset} does not exist`, { details: { dataset } });
    }
    return name;
  }

  async function listSnapshots(
    name: VolumeName,
  ): Promise<Array<SnapshotInfo & { path: string; order: number }>> {
    const dir = snapshotDir(name);
    const found: Array<SnapshotInfo & { path: string; order: number }> = [];
    for (const label of await entries(dir)) {
      const path = join(dir, label);
      if (!(await isSubvolume(path))) continue;
      const s = await show(path);
      found.push({
        id: s.uuid,
        label,
        createdAt: s.createdAt,
        bytes: s.referenced,
        path,
        order: s.subvolumeId,
      });
    }
    return found.sort((a, b) => a.order - b.order);
  }

  async function takeSnapshot(name: VolumeName, label: string): Promise<SnapshotInfo> {
    const dir = snapshotDir(name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, label);
    if (await entries(dir).then((e) => e.includes(label))) {
      throw new PloyzError('STORAGE_EXISTS', `volume ${name.full} already has a snapshot labelled ${label}`, {
        details: { dataset: livePath(name), label },
      });
    }
    await btrfs('subvolume', 'snapshot', '-r', livePath(name), path);
    const s = await showSynced(path);
    return { id: s.uuid, label, createdAt: s.createdAt, bytes: s.referenced };
  }

  async function deleteSubvolumes(paths: string[]): Promise<void> {
    if (paths.length > 0) await btrfs('subvolume', 'delete', ...paths);
  }

  async function snapshotOf(
    name: VolumeName,
    snapshotId: string,
  ): Promise<SnapshotInfo & { path: string; order: number }> {
    const target = (await listSnapshots(name)).find((s) => s.id === snapshotId);
    if (!target) {
      throw new PloyzError('NOT_FOUND', `volume ${name.full} has no snapshot with id ${snapshotId}`, {
        details: { dataset: livePath(name), snapshotId },
      });
    }
    return target;
  }

  /**
   * The snapshot swap of a revert (or a replace, whose snapshot is another volume's): a read-only
   * `pre-revert-<ms>` snapshot of the live data, a writable snapshot of `target` in staging with the
   * live quota, then live → staging, new → live (the first undone if the second fails).
   */
  async function swapIn(name: VolumeName, target: { path: string }): Promise<RevertResult> {
    const path = livePath(name);
    await enableQuota();
    const { limit } = await show(path);
    const stamp = Date.now();
    const preRevert = await takeSnapshot(name, `pre-revert-${stamp}`);
    const staging = stagingDir(name);
    await mkdir(staging, { recursive: true, mode: 0o700 });
    const next = join(staging, `${stamp}-next`);
    const old = join(staging, `${stamp}-old`);
    await btrfs('subvolume', 'snapshot', target.path, next);
    try {
      await btrfs('qgroup', 'limit', limit === null ? 'none' : String(limit), next);
      await rename(path, old);
      try {
        await rename(next, path);
      } catch (error) {
        await rename(old, path);
        throw error;
      }
    } catch (error) {
      await deleteSubvolumes([next]).catch(() => undefined);
      throw error;
    }
    // The replaced live data is the pre-revert snapshot; its subvolume is no longer needed.
    await deleteSubvolumes([old]).catch(() => undefined);
    return { preRevert };
  }

  return {
    kind: 'btrfs',
    capabilities: CAPABILITIES,

    async probe(): Promise<ProbeResult> {
      const version = (await btrfs('--version')).trim();
      let fsType: number;
      try {
        await mkdir(root, { recursive: true, mode: 0o755 });
        fsType = (await statfs(root)).type;
      } catch (error) {
        throw new PloyzError(
          'STORAGE_INVALID',
          `btrfs root ${root} cannot be created or read: mount a btrfs filesystem there (or use a directory on one)`,
          { details: { root }, cause: error },
        );
      }
      if (fsType !== BTRFS_SUPER_MAGIC) {
        throw new PloyzError(
          'STORAGE_INVALID',
          `${root} is not on a btrfs filesystem (type 0x${fsType.toString(16)}): mount btrfs there (mkfs.btrfs on a disk or a loop image)`,
          { details: { root, fsType } },
        );
      }
      await enableQuota();
      return { kind: 'btrfs', root, implementation: version, capabilities: CAPABILITIES };
    },

    async create(spec: CreateVolume): Promise<Volume> {
      const name = checkCreate(spec);
      const path = livePath(name);
      if (await exists(path)) {
        throw new PloyzError(
          'STORAGE_EXISTS',
          `volume ${name.full} already exists (${path}); adopt it instead`,
          {
            details: { dataset: path },
          },
        );
      }
      await mkdir(join(root, name.namespace), { recursive: true, mode: 0o755 });
      await enableQuota();
      await btrfs('subvolume', 'create', path);
      try {
        if (spec.quotaBytes !== null) await btrfs('qgroup', 'limit', String(spec.quotaBytes), path);
        await chown(path, spec.owner.uid, spec.owner.gid);
        await chmod(path, spec.mode);
        return { dataset: path, path };
      } catch (error) {
        await deleteSubvolumes([path]).catch(() => undefined);
        throw error;
      }
    },

    async open(nameText: string): Promise<Volume | undefined> {
      const path = livePath(parseVolumeName(nameText));
      return (await isSubvolume(path)) ? { dataset: path, path } : undefined;
    },

    async snapshot(dataset: string, label: string): Promise<SnapshotInfo> {
      checkSnapshotLabel(label);
      return takeSnapshot(await liveOf(dataset), label);
    },

    async snapshots(dataset: string): Promise<SnapshotInfo[]> {
      const name = await liveOf(dataset);
      return (await listSnapshots(name)).map(({ id, label, createdAt, bytes }) => ({
        id,
        label,
        createdAt,
        bytes,
      }));
    },

    async revert(dataset: string, snapshotId: string): Promise<RevertResult> {
      const name = await liveOf(dataset);
      return swapIn(name, await snapshotOf(name, snapshotId));
    },

    async clone(source: string, snapshotId: string, spec: CloneVolume): Promise<Volume> {
      const from = nameUnderRoot(root, source);
      const name = parseVolumeName(spec.name);
      if (spec.quotaBytes !== null) checkQuota(spec.quotaBytes);
      const path = livePath(name);
      if (await exists(path)) {
        throw new PloyzError('STORAGE_EXISTS', `volume ${name.full} already exists (${path})`, {
          details: { dataset: path },
        });
      }
      const target = await snapshotOf(from, snapshotId);
      await mkdir(join(root, name.namespace), { recursive: true, mode: 0o755 });
      await enableQuota();
      // A writable snapshot of the read-only one: shares every extent, copies nothing.
      await btrfs('subvolume', 'snapshot', target.path, path);
      try {
        if (spec.quotaBytes !== null) await btrfs('qgroup', 'limit', String(spec.quotaBytes), path);
        return { dataset: path, path };
      } catch (error) {
        await deleteSubvolumes([path]).catch(() => undefined);
        throw error;
      }
    },

    async originOf(dataset: string): Promise<string | null> {
      return (await show(livePath(await liveOf(dataset)))).parentUuid;
    },

    async replace(dataset: string, source: string, snapshotId: string): Promise<RevertResult> {
      const name = await liveOf(dataset);
      return swapIn(name, await snapshotOf(nameUnderRoot(root, source), snapshotId));
    },

    async destroySnapshot(dataset: string, snapshotId: string): Promise<void> {
      const name = await liveOf(dataset);
      const target = (await listSnapshots(name)).find((s) => s.id === snapshotId);
      if (!target) {
        throw new PloyzError('NOT_FOUND', `volume ${dataset} has no snapshot with id ${snapshotId}`, {
          details: { dataset, snapshotId },
        });
      }
      await deleteSubvolumes([target.path]);
    },

    async growQuota(dataset: string, quotaBytes: number): Promise<Usage> {
      checkQuota(quotaBytes);
      const name = await liveOf(dataset);
      const path = livePath(name);
      const current = await showSynced(path);
      checkQuotaNotBelowUsed(dataset, quotaBytes, current.referenced);
      await enableQuota();
      await btrfs('qgroup', 'limit', String(quotaBytes), path);
      return { usedBytes: current.referenced, quotaBytes };
    },

    async usage(dataset: string): Promise<Usage> {
      const s = await showSynced(livePath(await liveOf(dataset)));
      return { usedBytes: s.referenced, quotaBytes: s.limit };
    },

    async destroy(dataset: string): Promise<void> {
      const name = nameUnderRoot(root, dataset);
      const path = livePath(name);
      const staging = stagingDir(name);
      const snapshots = snapshotDir(name);
      const subvolumes: string[] = [];
      for (const dir of [staging, snapshots]) {
        for (const entry of await entries(dir)) {
          if (await isSubvolume(join(dir, entry))) subvolumes.push(join(dir, entry));
        }
      }
      if (await isSubvolume(path)) subvolumes.push(path);
      await deleteSubvolumes(subvolumes);
      for (const dir of [staging, snapshots]) await rmdir(dir).catch(() => undefined);
      await btrfs('qgroup', 'clear-stale', root).catch(() => undefined);
    },

    /** The final read-only snapshot is taken under `.retired`, then everything else goes. */
    async retire(dataset: string, label: string): Promise<RetireResult> {
      const name = await liveOf(dataset);
      const kept = retiredPath(root, name, label);
      if (await exists(kept)) {
        throw new PloyzError(
          'STORAGE_EXISTS',
          `a retired copy ${kept} already exists; it was left as it is`,
          {
            details: { dataset, kept },
          },
        );
      }
      // Taken straight at its kept path: a read-only subvolume cannot be moved to another directory.
      await mkdir(join(root, '.retired', name.namespace), { recursive: true, mode: 0o700 });
      await btrfs('subvolume', 'snapshot', '-r', livePath(name), kept);
      const s = await showSynced(kept);
      const snapshot = { id: s.uuid, label, createdAt: s.createdAt, bytes: s.referenced };
      await this.destroy(dataset);
      return {
        snapshot,
        kept,
        note: `the final read-only snapshot ${label} (a btrfs subvolume); the live data and every other snapshot are deleted. Free it with: btrfs subvolume delete ${kept}`,
      };
    },
  };
}
