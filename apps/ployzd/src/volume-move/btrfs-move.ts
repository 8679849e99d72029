/**
 * Volume moves on btrfs (move-storage.ts). The layout is the btrfs driver's: the live subvolume
 * `<root>/<ns>/<vol>`, read-only snapshots in `<root>/.snapshots/<ns>/<vol>/<label>`. A pass sends a
 * read-only snapshot (full, or `-p` from the previous pass's); the target receives it with
 * `btrfs receive` into the staging directory `<root>/.snapshots/<ns>/<vol>_incoming_<move>`, where it
 * arrives read-only with `received_uuid` = the sent snapshot's uuid. The commit renames that directory
 * to the volume's snapshot directory (a plain directory can move; a read-only subvolume cannot change
 * its parent) and makes a writable snapshot of the last pass the live subvolume.
 */
import { mkdir, readdir, rename, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PloyzError } from '@ployz/types';
import { parseSubvolumeShow } from '../storage/btrfs.ts';
import { type RunOptions, runTool, TOOLS } from '../storage/exec.ts';
import type { VolumeName } from '../storage/names.ts';
import type { Volume } from '../storage/port.ts';
import {
  alreadyHere,
  checkMoveId,
  incomingName,
  type MoveStorage,
  movedName,
  noReceivedCopy,
  type ReceivedSnapshot,
  type SourceStream,
} from './move-storage.ts';
import { startTool } from './tool-process.ts';
import { hashTree } from './tree-hash.ts';

export interface BtrfsMoveOptions extends RunOptions {
  /** The btrfs driver's root directory. */
  root: string;
}

const SUBVOLUME_ROOT_INO = 256;

async function isSubvolume(path: string): Promise<boolean> {
  const s = await stat(path).catch(() => undefined);
  return s?.isDirectory() === true && s.ino === SUBVOLUME_ROOT_INO;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export function btrfsMove(options: BtrfsMoveOptions): MoveStorage {
  const root = options.root.replace(/\/+$/, '');
  const run = (args: string[], extra: RunOptions = {}) =>
    runTool(TOOLS.btrfs, args, { ...options, ...extra });
  const live = (name: VolumeName) => join(root, name.namespace, name.volume);
  const snapshots = (name: VolumeName) => join(root, '.snapshots', name.namespace, name.volume);
  const staging = (name: VolumeName, moveId: string) =>
    join(root, '.snapshots', name.namespace, incomingName(name.volume, checkMoveId(moveId)));
  const show = async (path: string) => parseSubvolumeShow(await run(['subvolume', 'show', '--raw', path]));

  async function discard(dir: string): Promise<void> {
    if (!(await exists(dir))) return;
    const subvolumes: string[] = [];
    for (const entry of await readdir(dir)) {
      if (await isSubvolume(join(dir, entry))) subvolumes.push(join(dir, entry));
    }
    if (subvolumes.length > 0) await run(['subvolume', 'delete', ...subvolumes]);
    await rmdir(dir);
  }

  function notHere(name: VolumeName): PloyzError {
    return new PloyzError('NOT_FOUND', `volume ${name.full} does not exist here`, {
      details: { volume: name.full },
    });
  }

  return {
    kind: 'btrfs',

    async sourceStream(name, snapshot, base): Promise<SourceStream> {
      if (!(await isSubvolume(live(name)))) throw notHere(name);
      const path = join(snapshots(name), snapshot);
      if (!(await isSubvolume(path))) {
        throw new PloyzError('NOT_FOUND', `volume ${name.full} has no snapshot ${snapshot}`, {
          details: { volume: name.full, snapshot },
        });
      }
      const from = base === null ? undefined : join(snapshots(name), base);
      if (from !== undefined && !(await isSubvolume(from))) {
        throw new PloyzError(
          'NOT_FOUND',
          `volume ${name.full} has no snapshot ${base} to send an increment from`,
          {
            details: { volume: name.full, snapshot, base },
          },
        );
      }
      const sub = await show(path);
      if (!sub.readonly) {
        throw new PloyzError('STORAGE_INVALID', `snapshot ${path} is not read-only, so it cannot be sent`, {
          details: { path },
        });
      }
      const { sha256 } = await hashTree(path);
      return {
        id: sub.uuid,
        sha256,
        tool: TOOLS.btrfs,
        args: ['send', '-q', ...(from === undefined ? [] : ['-p', from]), path],
      };
    },

    async markMoved(name, moveId) {
      checkMoveId(moveId);
      if (!(await isSubvolume(live(name)))) throw notHere(name);
      const kept = join(root, name.namespace, movedName(name.volume, moveId));
      const keptSnapshots = join(root, '.snapshots', name.namespace, movedName(name.volume, moveId));
      if ((await exists(kept)) || (await exists(keptSnapshots))) {
        throw new PloyzError('STORAGE_EXISTS', `${kept} exists already; it was left as it is`, {
          details: { kept },
        });
      }
      await rename(live(name), kept);
      if (await exists(snapshots(name))) await rename(snapshots(name), keptSnapshots);
      return { kept };
    },

    async checkReceive(name, moveId, base) {
      if (await exists(live(name))) {
        throw alreadyHere(name);
      }
      const dir = staging(name, moveId);
      if (base === null) {
        await discard(dir);
        return;
      }
      const path = join(dir, base);
      const received = (await isSubvolume(path)) ? await show(path) : undefined;
      if (received === undefined || received.receivedUuid === null || !received.readonly) {
        throw noReceivedCopy(name, base, true);
      }
    },

    async receive(name, moveId, _base, input: Readable) {
      const dir = staging(name, moveId);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // --chroot: whatever paths the stream names, the receive cannot write outside the staging dir.
      await startTool(TOOLS.btrfs, ['receive', '-q', '--chroot', dir], {
        searchPath: options.searchPath,
        stdin: input,
      }).exited;
    },

    async received(name, moveId, snapshot): Promise<ReceivedSnapshot> {
      const path = join(staging(name, moveId), snapshot);
      if (!(await isSubvolume(path))) return { id: null };
      const sub = await show(path);
      // A receive that ended early leaves a writable subvolume with no received uuid.
      if (!sub.readonly || sub.receivedUuid === null) return { id: null };
      return { id: sub.receivedUuid, sha256: (await hashTree(path)).sha256 };
    },

    async discard(name, moveId) {
      await discard(staging(name, moveId));
    },

    async hasTemporary(name, moveId) {
      return exists(staging(name, moveId));
    },

    async commit(name, moveId, snapshot, quotaBytes): Promise<Volume> {
      const dir = staging(name, moveId);
      const path = live(name);
      if ((await exists(path)) || (await readdir(snapshots(name)).catch(() => [])).length > 0) {
        throw alreadyHere(name);
      }
      if (!(await isSubvolume(join(dir, snapshot)))) {
        throw noReceivedCopy(name, snapshot, false);
      }
      await rmdir(snapshots(name)).catch(() => undefined);
      await rename(dir, snapshots(name));
      await mkdir(join(root, name.namespace), { recursive: true, mode: 0o755 });
      await run(['subvolume', 'snapshot', join(snapshots(name), snapshot), path]);
      if (quotaBytes !== null) {
        await run(['quota', 'enable', root]);
        await run(['qgroup', 'limit', String(quotaBytes), path]);
      }
      return { dataset: path, path };
    },
  };
}
