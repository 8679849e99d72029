/**
 * Volume moves on zfs (move-storage.ts). The layout is the zfs driver's: a volume is a container
 * dataset `<root>/<ns>/<vol>` (canmount=off) whose one mounted generation `gN` holds the snapshots.
 * A pass sends `gN@snap` (full, or `-i gN@base`); the target receives it unmounted (`zfs recv -u`)
 * as `g1` of the container `<root>/<ns>/<vol>_incoming_<move>`, and the commit renames that
 * container into place and mounts its `g1`. zfs-fuse has no resumable receive (`-s`): a pass that
 * breaks off is not resumed, its temporary copy is destroyed and the move starts again.
 */
import type { Readable } from 'node:stream';
import { PloyzError } from '@ployz/types';
import { type RunOptions, runTool, TOOLS } from '../storage/exec.ts';
import type { VolumeName } from '../storage/names.ts';
import type { Volume } from '../storage/port.ts';
import { whileBusy } from '../storage/zfs.ts';
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

export interface ZfsMoveOptions extends RunOptions {
  /** The zfs driver's root dataset, e.g. `tank/ployz`. */
  root: string;
}

const GENERATION = /\/g[1-9][0-9]*$/;

export function zfsMove(options: ZfsMoveOptions): MoveStorage {
  const { root } = options;
  const run = (args: string[], extra: RunOptions = {}) => runTool(TOOLS.zfs, args, { ...options, ...extra });
  const container = (name: VolumeName) => `${root}/${name.full}`;
  const temporary = (name: VolumeName, moveId: string) =>
    `${root}/${name.namespace}/${incomingName(name.volume, checkMoveId(moveId))}`;

  async function exists(dataset: string): Promise<boolean> {
    try {
      await run(['list', '-H', '-o', 'name', dataset]);
      return true;
    } catch (error) {
      if (error instanceof PloyzError && /does not exist/.test(String(error.details?.stderr))) return false;
      throw error;
    }
  }

  /** `<gen>@<label>` → guid, for every snapshot under `dataset` (zfs-fuse's list has no -p). */
  async function snapshotGuids(dataset: string): Promise<Map<string, string>> {
    const names = (await run(['list', '-H', '-o', 'name', '-t', 'snapshot', '-r', dataset]))
      .split('\n')
      .filter((n) => n.includes('@'));
    const guids = new Map<string, string>();
    if (names.length === 0) return guids;
    for (const line of (await run(['get', '-H', '-p', '-o', 'name,value', 'guid', ...names])).split('\n')) {
      const [snapshot, guid] = line.split('\t');
      if (snapshot?.includes('@') && guid) guids.set(snapshot, guid);
    }
    return guids;
  }

  async function generations(dataset: string): Promise<Array<{ name: string; mountpoint: string }>> {
    const out = await run([
      'list',
      '-H',
      '-r',
      '-d',
      '1',
      '-t',
      'filesystem',
      '-o',
      'name,mountpoint',
      dataset,
    ]);
    return out
      .split('\n')
      .map((line) => line.split('\t'))
      .filter(([name]) => name?.startsWith(`${dataset}/`) && GENERATION.test(name))
      .map(([name, mountpoint]) => ({ name: name ?? '', mountpoint: mountpoint ?? 'none' }));
  }

  async function destroyTree(dataset: string): Promise<void> {
    if (!(await exists(dataset))) return;
    for (const gen of await generations(dataset)) {
      if (gen.mountpoint !== 'none') await whileBusy(() => run(['set', 'mountpoint=none', gen.name]));
    }
    await whileBusy(() => run(['destroy', '-r', dataset]));
  }

  return {
    kind: 'zfs',

    async sourceStream(name, snapshot, base): Promise<SourceStream> {
      const guids = await snapshotGuids(container(name)).catch((error: unknown) => {
        if (error instanceof PloyzError && /does not exist/.test(String(error.details?.stderr))) {
          throw new PloyzError('NOT_FOUND', `volume ${name.full} does not exist here`, {
            details: { volume: name.full },
            cause: error,
          });
        }
        throw error;
      });
      const full = [...guids.keys()].find(
        (s) => s.endsWith(`@${snapshot}`) && GENERATION.test(s.slice(0, s.indexOf('@'))),
      );
      const id = full === undefined ? undefined : guids.get(full);
      if (full === undefined || id === undefined) {
        throw new PloyzError('NOT_FOUND', `volume ${name.full} has no snapshot ${snapshot}`, {
          details: { volume: name.full, snapshot },
        });
      }
      const gen = full.slice(0, full.indexOf('@'));
      if (base !== null && !guids.has(`${gen}@${base}`)) {
        throw new PloyzError(
          'NOT_FOUND',
          `volume ${name.full} has no snapshot ${base} beside ${snapshot} to send an increment from (reverted between the passes?)`,
          { details: { volume: name.full, snapshot, base } },
        );
      }
      const from = base === null ? [] : ['-i', `${gen}@${base}`];
      return { id, tool: TOOLS.zfs, args: ['send', ...from, full] };
    },

    async markMoved(name, moveId) {
      const source = container(name);
      const kept = `${root}/${name.namespace}/${movedName(name.volume, checkMoveId(moveId))}`;
      if (await exists(kept)) {
        throw new PloyzError('STORAGE_EXISTS', `${kept} exists already; it was left as it is`, {
          details: { kept },
        });
      }
      if (!(await exists(source))) {
        throw new PloyzError('NOT_FOUND', `volume ${name.full} does not exist here`, {
          details: { volume: name.full },
        });
      }
      // zfs-fuse cannot rename a mounted dataset: unmount every generation first.
      for (const gen of await generations(source)) {
        if (gen.mountpoint !== 'none') await whileBusy(() => run(['set', 'mountpoint=none', gen.name]));
      }
      await whileBusy(() => run(['rename', source, kept]));
      return { kept };
    },

    async checkReceive(name, moveId, base) {
      if (await exists(container(name))) {
        throw alreadyHere(name);
      }
      const temp = temporary(name, moveId);
      if (base === null) {
        await destroyTree(temp);
        return;
      }
      const guids = (await exists(temp)) ? await snapshotGuids(temp) : new Map<string, string>();
      if (!guids.has(`${temp}/g1@${base}`)) {
        throw noReceivedCopy(name, base, true);
      }
    },

    async receive(name, moveId, base, input: Readable) {
      const temp = temporary(name, moveId);
      if (base === null) await run(['create', '-p', '-o', 'canmount=off', temp]);
      await startTool(TOOLS.zfs, ['recv', '-u', `${temp}/g1`], {
        searchPath: options.searchPath,
        stdin: input,
      }).exited;
    },

    async received(name, moveId, snapshot): Promise<ReceivedSnapshot> {
      const temp = temporary(name, moveId);
      const guids = await snapshotGuids(temp);
      return { id: guids.get(`${temp}/g1@${snapshot}`) ?? null };
    },

    async discard(name, moveId) {
      await destroyTree(temporary(name, moveId));
    },

    async hasTemporary(name, moveId) {
      return exists(temporary(name, moveId));
    },

    async commit(name, moveId, snapshot, quotaBytes): Promise<Volume> {
      const temp = temporary(name, moveId);
      const final = container(name);
      if (await exists(final)) {
        throw alreadyHere(name);
      }
      const guids = (await exists(temp)) ? await snapshotGuids(temp) : new Map<string, string>();
      if (!guids.has(`${temp}/g1@${snapshot}`)) {
        throw noReceivedCopy(name, snapshot, false);
      }
      await run(['set', 'mountpoint=none', `${temp}/g1`]);
      await whileBusy(() => run(['rename', temp, final]));
      const path = (await run(['get', '-H', '-o', 'value', 'mountpoint', final])).trim();
      if (!path.startsWith('/')) {
        throw new PloyzError(
          'STORAGE_INVALID',
          `${final} has no mount path (mountpoint ${path}); give ${root} one`,
          {
            details: { dataset: final, mountpoint: path },
          },
        );
      }
      if (quotaBytes !== null) await run(['set', `refquota=${quotaBytes}`, `${final}/g1`]);
      await run(['set', `mountpoint=${path}`, `${final}/g1`]);
      return { dataset: final, path };
    },
  };
}
