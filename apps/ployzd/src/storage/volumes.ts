/**
 * This machine's volumes, over its one VolumeDriver: what the participant side asks of storage.
 * `ensure` adopts a volume that exists (never recreated; a changed quota is grown or refused
 * below what is used) or creates it with its quota, owner and mode; a new volume declared with
 * neither owner nor mode is filled from the image's content at the mount target, ownership kept,
 * as Docker does for named volumes (a non-root image can then write to it). Snapshots are labelled
 * with the deploy id that took them; reverts keep every snapshot (port.ts).
 *
 * A branch's volume is a clone of another volume's snapshot (`clone`), a promote --with-data
 * replaces a volume's live data with another's snapshot (`replace`); both stay on this machine's
 * one driver.
 *
 * Calls for one volume are serialised: two starts of one per-slot volume, or a snapshot racing a
 * create, see each other's result.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { volumeNameOf } from '@ployz/protocol';
import { isPloyzError, PloyzError, type VolumeSpec } from '@ployz/types';
import type Docker from 'dockerode';
import { runTool, TOOLS } from './exec.ts';
import type {
  DriverKind,
  RetireResult,
  RevertResult,
  SnapshotInfo,
  Usage,
  Volume,
  VolumeDriver,
} from './port.ts';
import { type StorageSpec, volumeDriver } from './storage-spec.ts';

export interface EnsureVolume {
  namespace: string;
  spec: Pick<VolumeSpec, 'name' | 'quota_bytes' | 'owner' | 'mode'>;
  /** The slot of a per-slot volume (dataset `<volume>-<slot>`); null for a single volume. */
  slot: number | null;
  /** Where to copy initial content from when the volume is new and has neither owner nor mode. */
  copyUp: { image: string; target: string } | null;
}

export interface LocalVolume extends Volume {
  /** `<namespace>/<volume>[-<slot>]`. */
  name: string;
  created: boolean;
}

export interface VolumeState extends Volume {
  name: string;
  usage: Usage;
  snapshots: SnapshotInfo[];
}

/** `<namespace>/<volume>` or, per slot, `<namespace>/<volume>-<slot>`. */
export function localVolumeName(namespace: string, volume: string, slot: number | null): string {
  return `${namespace}/${volumeNameOf(volume, slot)}`;
}

const ROOT_DEFAULT = { owner: { uid: 0, gid: 0 }, mode: 0o755 };

export class LocalVolumes {
  readonly #driver: VolumeDriver;
  readonly #docker: () => Docker;
  readonly #queues = new Map<string, Promise<unknown>>();
  /** The directory volumes live under (btrfs, dir), or null when the driver mounts them itself (zfs). */
  readonly pathRoot: string | null;

  constructor(driver: VolumeDriver, docker: () => Docker, pathRoot: string | null) {
    this.#driver = driver;
    this.#docker = docker;
    this.pathRoot = pathRoot;
  }

  /** The volumes of the storage a machine chose (`zfs:<pool>`, `btrfs:<path>`, `dir:<path>`). */
  static of(spec: StorageSpec, docker: () => Docker): LocalVolumes {
    return new LocalVolumes(volumeDriver(spec), docker, spec.kind === 'zfs' ? null : spec.root);
  }

  get kind(): DriverKind {
    return this.#driver.kind;
  }

  get canSnapshot(): boolean {
    return this.#driver.capabilities.snapshots;
  }

  probe() {
    return this.#driver.probe();
  }

  ensure(request: EnsureVolume): Promise<LocalVolume> {
    const name = localVolumeName(request.namespace, request.spec.name, request.slot);
    return this.#serial(name, async () => {
      const existing = await this.#driver.open(name);
      if (existing !== undefined) {
        await this.#adoptQuota(existing, request.spec.quota_bytes);
        return { ...existing, name, created: false };
      }
      const explicit = request.spec.owner !== null || request.spec.mode !== null;
      const volume = await this.#driver.create({
        name,
        quotaBytes: this.#driver.capabilities.quota ? request.spec.quota_bytes : null,
        owner: request.spec.owner ?? ROOT_DEFAULT.owner,
        mode: request.spec.mode ?? ROOT_DEFAULT.mode,
      });
      try {
        if (!explicit && request.copyUp !== null) await this.#copyUp(volume.path, request.copyUp);
      } catch (error) {
        await this.#driver.destroy(volume.dataset).catch(() => undefined);
        throw new PloyzError(
          'STORAGE_FAILED',
          `volume ${name}: copying ${request.copyUp?.target} of ${request.copyUp?.image} into the new volume failed: ${(error as Error).message}; nothing was kept`,
          { details: { name }, cause: error },
        );
      }
      return { ...volume, name, created: true };
    });
  }

  /** A snapshot labelled `label` (a deploy id); the one already taken under that label is returned again. */
  snapshot(name: string, label: string): Promise<SnapshotInfo & Volume> {
    return this.#serial(name, async () => {
      const volume = await this.#open(name);
      try {
        return { ...(await this.#driver.snapshot(volume.dataset, label)), ...volume };
      } catch (error) {
        // Taken already (a retried commit): the same snapshot again. Listing only then keeps the
        // commit's critical path to one snapshot call.
        if (!isPloyzError(error) || error.code !== 'STORAGE_EXISTS') throw error;
        const before = (await this.#driver.snapshots(volume.dataset)).find((s) => s.label === label);
        if (before === undefined) throw error;
        return { ...before, ...volume };
      }
    });
  }

  revert(name: string, snapshotId: string): Promise<RevertResult> {
    return this.#serial(name, async () => this.#driver.revert((await this.#open(name)).dataset, snapshotId));
  }

  /**
   * A new volume `name` as a copy-on-write clone of the snapshot `snapshotId` of the volume
   * `sourceName` (a branch). A volume `name` that is already a clone of that very snapshot and has
   * no snapshot of its own was left by a branch that died before its commit (nothing committed
   * it): it is made again. Any other volume of that name is STORAGE_EXISTS, left as it is.
   */
  clone(
    sourceName: string,
    snapshotId: string,
    name: string,
    quotaBytes: number | null,
  ): Promise<LocalVolume & { tookMs: number }> {
    return this.#serial(name, async () => {
      const source = await this.#open(sourceName);
      const existing = await this.#driver.open(name);
      if (existing !== undefined) {
        if (!(await this.#isBareCloneOf(existing, snapshotId))) {
          throw new PloyzError(
            'STORAGE_EXISTS',
            `volume ${name} already exists and is not an uncommitted clone of that snapshot; it was left as it is`,
            { details: { name } },
          );
        }
        await this.#driver.destroy(existing.dataset);
      }
      const started = performance.now();
      const volume = await this.#driver.clone(source.dataset, snapshotId, {
        name,
        quotaBytes: this.#driver.capabilities.quota ? quotaBytes : null,
      });
      return { ...volume, name, created: true, tookMs: performance.now() - started };
    });
  }

  /** Destroys a clone a failed branch made: only while it is a clone of `originId` with no snapshot of its own. */
  discardClone(name: string, originId: string): Promise<boolean> {
    return this.#serial(name, async () => {
      const existing = await this.#driver.open(name);
      if (existing === undefined || !(await this.#isBareCloneOf(existing, originId))) return false;
      await this.#driver.destroy(existing.dataset);
      return true;
    });
  }

  /** The snapshot `snapshotId` of `sourceName` becomes the live data of `name` (promote --with-data). */
  replace(name: string, sourceName: string, snapshotId: string): Promise<RevertResult> {
    return this.#serial(name, async () => {
      const [volume, source] = await Promise.all([this.#open(name), this.#open(sourceName)]);
      return this.#driver.replace(volume.dataset, source.dataset, snapshotId);
    });
  }

  async #isBareCloneOf(volume: Volume, snapshotId: string): Promise<boolean> {
    const [origin, snapshots] = await Promise.all([
      this.#driver.originOf(volume.dataset),
      this.#driver.snapshots(volume.dataset),
    ]);
    return origin === snapshotId && snapshots.length === 0;
  }

  /** Destroys snapshots retention no longer keeps; one that cannot go (a zfs origin) is kept with why. */
  prune(
    name: string,
    snapshotIds: readonly string[],
  ): Promise<{ destroyed: string[]; kept: { id: string; reason: string }[] }> {
    return this.#serial(name, async () => {
      const volume = await this.#open(name);
      const destroyed: string[] = [];
      const kept: { id: string; reason: string }[] = [];
      for (const id of snapshotIds) {
        try {
          await this.#driver.destroySnapshot(volume.dataset, id);
          destroyed.push(id);
        } catch (error) {
          if (isPloyzError(error) && error.code === 'NOT_FOUND') destroyed.push(id);
          else kept.push({ id, reason: (error as Error).message });
        }
      }
      return { destroyed, kept };
    });
  }

  /**
   * namespace rm --delete-volumes: the volume leaves its path for good, a final copy labelled
   * `label` kept where RetireResult says. Null when there is no such volume here (gone already).
   */
  retire(name: string, label: string): Promise<(RetireResult & { dataset: string }) | null> {
    return this.#serial(name, async () => {
      const volume = await this.#driver.open(name);
      if (volume === undefined) return null;
      return { ...(await this.#driver.retire(volume.dataset, label)), dataset: volume.dataset };
    });
  }

  describe(name: string): Promise<VolumeState | undefined> {
    return this.#serial(name, async () => {
      const volume = await this.#driver.open(name);
      if (volume === undefined) return undefined;
      const [usage, snapshots] = await Promise.all([
        this.#driver.usage(volume.dataset),
        this.#driver.snapshots(volume.dataset),
      ]);
      return { ...volume, name, usage, snapshots };
    });
  }

  async #open(name: string): Promise<Volume> {
    const volume = await this.#driver.open(name);
    if (volume === undefined)
      throw new PloyzError('NOT_FOUND', `volume ${name} does not exist on this machine`, {
        details: { name },
      });
    return volume;
  }

  async #adoptQuota(volume: Volume, quotaBytes: number | null): Promise<void> {
    if (quotaBytes === null || !this.#driver.capabilities.quota) return;
    const usage = await this.#driver.usage(volume.dataset);
    if (usage.quotaBytes !== quotaBytes) await this.#driver.growQuota(volume.dataset, quotaBytes);
  }

  /**
   * The image's directory at `target`, with owners and modes, becomes the volume's content and its
   * root's owner and mode. Nothing at `target` in the image: the volume stays empty.
   */
  async #copyUp(path: string, from: { image: string; target: string }): Promise<void> {
    const docker = this.#docker();
    const container = await docker.createContainer({
      Image: from.image,
      Entrypoint: ['/nonexistent-ployz-copy-up'],
      Cmd: [],
      Labels: { 'ployz.copy-up': 'true' },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      let archive: NodeJS.ReadableStream;
      try {
        archive = await container.getArchive({ path: from.target });
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return;
        throw error;
      }
      const scratch = join(path, `.ployz-copy-up-${randomBytes(4).toString('hex')}`);
      await mkdir(scratch, { mode: 0o700 });
      try {
        await runTool(TOOLS.tar, ['-x', '--same-owner', '-p', '-C', scratch], { stdin: archive });
        const top = join(scratch, basename(from.target));
        const s = await stat(top).catch(() => undefined);
        if (!s?.isDirectory()) return; // a file at the target: nothing to copy into a directory
        for (const entry of await readdir(top)) await rename(join(top, entry), join(path, entry));
        await chown(path, s.uid, s.gid);
        await chmod(path, s.mode & 0o7777);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  #serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(name) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#queues.set(name, tail);
    void tail.then(() => {
      if (this.#queues.get(name) === tail) this.#queues.delete(name);
    });
    return next;
  }
}
