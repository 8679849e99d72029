/**
 * The zfs driver (real `zfs`/`zpool`: zfs-fuse on this machine, kernel ZFS where present).
 *
 * Layout: a volume `<ns>/<vol>` is a container dataset `<root>/<ns>/<vol>` (canmount=off, the
 * handle callers keep) holding generations `g1`, `g2`…; exactly one generation is live, mounted at
 * the container's mount path with the volume's refquota (the quota limits the live data, not the
 * history). Snapshots are taken on the live generation.
 *
 * Revert never uses `zfs rollback` (it destroys newer snapshots). It unmounts the live generation
 * (STORAGE_BUSY if a writer holds it), snapshots it as `pre-revert-<ms>`, clones the target into a
 * new generation, promotes the clone (so the live data owns the history it came from) and mounts it
 * at the same path. Every snapshot stays, on one generation or another, and keeps its guid (the
 * snapshot id), so reverting to an older snapshot and then to a newer one works. Any failure before
 * the new generation is mounted remounts the old one: nothing is half-reverted.
 * zfs-fuse cannot rename a mounted dataset ("dataset is busy"); switching mountpoints needs no rename.
 *
 * A branch's volume is a clone of another volume's snapshot as its `g1` (not promoted: the source
 * keeps its history, and that snapshot cannot be destroyed while the clone exists — retention keeps
 * it and says why). A promote --with-data replaces the live generation with a clone of the branch's
 * snapshot the same way a revert does, without the promote.
 */
import { existsSync } from 'node:fs';
import { chmod, chown, rmdir } from 'node:fs/promises';
import { PloyzError } from '@ployz/types';
import { type RunOptions, TOOLS, type ToolRunner, toolRunner } from './exec.ts';
import {
  checkCreate,
  checkQuota,
  checkQuotaNotBelowUsed,
  checkSnapshotLabel,
  nameUnderRoot,
  parseVolumeName,
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

export interface ZfsDriverOptions extends RunOptions {
  /** The dataset volumes live under, e.g. `tank/ployz`; created by probe() when missing. */
  root: string;
}

const DATASET = /^[A-Za-z][A-Za-z0-9_.:-]*(\/[A-Za-z0-9][A-Za-z0-9_.:-]*)*$/;
const GENERATION = /^g([1-9][0-9]*)$/;
const CAPABILITIES: DriverCapabilities = { snapshots: true, quota: true };

interface Generation {
  dataset: string;
  index: number;
  mountpoint: string;
  refquota: number | null;
  referenced: number;
}

/** `zfs get -H -p -o name,property,value …` → name → property → value. */
function parseGet(out: string): Map<string, Map<string, string>> {
  const byName = new Map<string, Map<string, string>>();
  for (const line of out.split('\n')) {
    const [name, property, value] = line.split('\t');
    if (name === undefined || property === undefined || value === undefined) continue;
    let props = byName.get(name);
    if (!props) {
      props = new Map();
      byName.set(name, props);
    }
    props.set(property, value);
  }
  return byName;
}

function bytes(value: string | undefined): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

function quotaOf(value: string | undefined): number | null {
  if (value === undefined || value === 'none' || value === '-' || value === '0') return null;
  return bytes(value);
}

/**
 * zfs-fuse finishes an unmount (and the FUSE release of the last closed file) after the command
 * returns, so a destroy right after it can say "dataset is busy" for a moment. Only called once the
 * unmount succeeded, i.e. when no writer holds the dataset any more.
 */
export async function whileBusy<T>(action: () => Promise<T>, attempts = 30): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (error) {
      if (attempt >= attempts || !(error instanceof PloyzError && error.code === 'STORAGE_BUSY')) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(50 * attempt, 300)));
    }
  }
}

function notFound(what: string, details: Record<string, unknown>): PloyzError {
  return new PloyzError('NOT_FOUND', what, { details });
}

export function zfsDriver(options: ZfsDriverOptions): VolumeDriver {
  const root = options.root;
  if (!DATASET.test(root) || root.length > 200) {
    throw new PloyzError(
      'STORAGE_INVALID',
      `zfs root ${JSON.stringify(root)} is not a dataset name like tank/ployz`,
      {
        details: { root },
      },
    );
  }
  const pool = root.split('/')[0] ?? root;
  const run: ToolRunner = toolRunner(options);
  const zfs = (...args: string[]) => run(TOOLS.zfs, args);

  async function exists(dataset: string): Promise<boolean> {
    try {
      await zfs('list', '-H', '-o', 'name', dataset);
      return true;
    } catch (error) {
      if (error instanceof PloyzError && /does not exist/.test(String(error.details?.stderr))) return false;
      throw error;
    }
  }

  async function generations(container: string): Promise<Generation[]> {
    const out = await zfs(
      'get',
      '-H',
      '-p',
      '-r',
      '-d',
      '1',
      '-o',
      'name,property,value',
      'type,mountpoint,refquota,referenced',
      container,
    );
    const gens: Generation[] = [];
    for (const [dataset, props] of parseGet(out)) {
      const match = GENERATION.exec(dataset.slice(container.length + 1));
      if (!dataset.startsWith(`${container}/`) || !match || props.get('type') !== 'filesystem') continue;
      gens.push({
        dataset,
        index: Number(match[1]),
        mountpoint: props.get('mountpoint') ?? 'none',
        refquota: quotaOf(props.get('refquota')),
        referenced: bytes(props.get('referenced')),
      });
    }
    return gens.sort((a, b) => a.index - b.index);
  }

  async function live(container: string): Promise<Generation> {
    let gens: Generation[];
    try {
      gens = await generations(container);
    } catch (error) {
      if (error instanceof PloyzError && /does not exist/.test(String(error.details?.stderr))) {
        throw notFound(`volume ${container} does not exist`, { dataset: container });
      }
      throw error;
    }
    const mounted = gens.filter((g) => g.mountpoint !== 'none' && g.mountpoint !== 'legacy');
    const [only] = mounted;
    if (mounted.length !== 1 || only === undefined) {
      throw new PloyzError(
        'STORAGE_FAILED',
        `volume ${container} has ${mounted.length} live generations (expected 1): an interrupted revert; inspect with zfs list -r ${container}`,
        { details: { dataset: container, generations: gens.map((g) => g.dataset) } },
      );
    }
    return only;
  }

  async function containerPath(container: string): Promise<string> {
    const path = (await zfs('get', '-H', '-o', 'value', 'mountpoint', container)).trim();
    if (!path.startsWith('/')) {
      throw new PloyzError(
        'STORAGE_INVALID',
        `${container} has no mount path (mountpoint ${path}); give ${root} a mountpoint (zfs set mountpoint=/var/lib/ployz/volumes ${root})`,
        { details: { dataset: container, mountpoint: path } },
      );
    }
    return path;
  }

  async function listSnapshots(
    container: string,
  ): Promise<Array<SnapshotInfo & { name: string; txg: number }>> {
    const names = (await zfs('list', '-H', '-o', 'name', '-t', 'snapshot', '-r', container))
      .split('\n')
      .filter((n) => n.includes('@'));
    if (names.length === 0) return [];
    const props = parseGet(
      await zfs(
        'get',
        '-H',
        '-p',
        '-o',
        'name,property,value',
        'guid,creation,referenced,createtxg',
        ...names,
      ),
    );
    return names
      .map((name) => {
        const p = props.get(name);
        return {
          name,
          txg: bytes(p?.get('createtxg')),
          id: p?.get('guid') ?? '',
          label: name.slice(name.indexOf('@') + 1),
          createdAt: new Date(bytes(p?.get('creation')) * 1000).toISOString(),
          bytes: bytes(p?.get('referenced')),
        };
      })
      .sort((a, b) => a.txg - b.txg);
  }

  function publicInfo(s: SnapshotInfo): SnapshotInfo {
    return { id: s.id, label: s.label, createdAt: s.createdAt, bytes: s.bytes };
  }

  /**
   * `zfs snapshot` then one `zfs get` of that snapshot: two commands on a commit's critical path.
   * Labels are deploy ids, so the only repeat is a retried commit on the same live generation,
   * which zfs refuses ("dataset already exists"): that is STORAGE_EXISTS.
   */
  async function takeSnapshot(container: string, gen: string, label: string): Promise<SnapshotInfo> {
    const name = `${gen}@${label}`;
    try {
      await zfs('snapshot', name);
    } catch (error) {
      if (error instanceof PloyzError && /already exists/.test(String(error.details?.stderr))) {
        throw new PloyzError(
          'STORAGE_EXISTS',
          `volume ${container} already has a snapshot labelled ${label}`,
          {
            details: { dataset: container, label },
          },
        );
      }
      throw error;
    }
    const props = parseGet(
      await zfs('get', '-H', '-p', '-o', 'name,property,value', 'guid,creation,referenced', name),
    ).get(name);
    if (props === undefined || !props.get('guid')) {
      throw new PloyzError('STORAGE_FAILED', `snapshot ${name} has no guid after zfs snapshot`);
    }
    return {
      id: props.get('guid') ?? '',
      label,
      createdAt: new Date(bytes(props.get('creation')) * 1000).toISOString(),
      bytes: bytes(props.get('referenced')),
    };
  }

  async function usageOf(gen: Generation): Promise<Usage> {
    return { usedBytes: gen.referenced, quotaBytes: gen.refquota };
  }

  return {
    kind: 'zfs',
    capabilities: CAPABILITIES,

    async probe(): Promise<ProbeResult> {
      const health = (
        await run(TOOLS.zpool, ['list', '-H', '-o', 'health', pool]).catch((error: unknown) => {
          if (error instanceof PloyzError && /no such pool/i.test(String(error.details?.stderr))) {
            throw new PloyzError(
              'STORAGE_INVALID',
              `zfs pool ${pool} does not exist: create it (zpool create ${pool} <device or file>) or choose another with --storage zfs:<pool>`,
              { details: { pool }, cause: error },
            );
          }
          throw error;
        })
      ).trim();
      if (health !== 'ONLINE') {
        throw new PloyzError(
          'STORAGE_FAILED',
          `zfs pool ${pool} is ${health}, not ONLINE: see zpool status ${pool}`,
          {
            details: { pool, health },
          },
        );
      }
      if (!(await exists(root))) await zfs('create', '-p', root);
      await containerPath(root);
      return {
        kind: 'zfs',
        root,
        implementation: existsSync('/dev/zfs') ? 'kernel' : 'zfs-fuse',
        capabilities: CAPABILITIES,
      };
    },

    async create(spec: CreateVolume): Promise<Volume> {
      const name = checkCreate(spec);
      const container = `${root}/${name.full}`;
      if (await exists(container)) {
        throw new PloyzError(
          'STORAGE_EXISTS',
          `volume ${name.full} already exists (${container}); adopt it instead`,
          {
            details: { dataset: container },
          },
        );
      }
      await zfs('create', '-p', '-o', 'canmount=off', container);
      try {
        const path = await containerPath(container);
        const quota = spec.quotaBytes === null ? [] : ['-o', `refquota=${spec.quotaBytes}`];
        await zfs('create', '-o', `mountpoint=${path}`, ...quota, `${container}/g1`);
        await chown(path, spec.owner.uid, spec.owner.gid);
        await chmod(path, spec.mode);
        return { dataset: container, path };
      } catch (error) {
        await destroyContainer(container).catch(() => undefined);
        throw error;
      }
    },

    async open(nameText: string): Promise<Volume | undefined> {
      const name = parseVolumeName(nameText);
      const container = `${root}/${name.full}`;
      if (!(await exists(container))) return undefined;
      const gen = await live(container);
      return { dataset: container, path: gen.mountpoint };
    },

    async snapshot(dataset: string, label: string): Promise<SnapshotInfo> {
      nameUnderRoot(root, dataset);
      checkSnapshotLabel(label);
      const gen = await live(dataset);
      return takeSnapshot(dataset, gen.dataset, label);
    },

    async snapshots(dataset: string): Promise<SnapshotInfo[]> {
      nameUnderRoot(root, dataset);
      if (!(await exists(dataset))) throw notFound(`volume ${dataset} does not exist`, { dataset });
      return (await listSnapshots(dataset)).map(publicInfo);
    },

    async revert(dataset: string, snapshotId: string): Promise<RevertResult> {
      nameUnderRoot(root, dataset);
      // Promoted: the live data owns the history it came from.
      return switchTo(dataset, await snapshotNamed(dataset, snapshotId), true);
    },

    async clone(source: string, snapshotId: string, spec: CloneVolume): Promise<Volume> {
      nameUnderRoot(root, source);
      const name = parseVolumeName(spec.name);
      if (spec.quotaBytes !== null) checkQuota(spec.quotaBytes);
      const container = `${root}/${name.full}`;
      if (await exists(container)) {
        throw new PloyzError('STORAGE_EXISTS', `volume ${name.full} already exists (${container})`, {
          details: { dataset: container },
        });
      }
      const target = await snapshotNamed(source, snapshotId);
      await zfs('create', '-p', '-o', 'canmount=off', container);
      try {
        const path = await containerPath(container);
        const quota = spec.quotaBytes === null ? [] : ['-o', `refquota=${spec.quotaBytes}`];
        // Not promoted: the clone's history starts at its own first snapshot, the source keeps its own.
        await zfs('clone', '-o', `mountpoint=${path}`, ...quota, target, `${container}/g1`);
        return { dataset: container, path };
      } catch (error) {
        await destroyContainer(container).catch(() => undefined);
        throw error;
      }
    },

    async originOf(dataset: string): Promise<string | null> {
      nameUnderRoot(root, dataset);
      const gen = await live(dataset);
      const origin = (await zfs('get', '-H', '-o', 'value', 'origin', gen.dataset)).trim();
      if (origin === '' || origin === '-') return null;
      return (await zfs('get', '-H', '-p', '-o', 'value', 'guid', origin)).trim() || null;
    },

    async replace(dataset: string, source: string, snapshotId: string): Promise<RevertResult> {
      nameUnderRoot(root, dataset);
      nameUnderRoot(root, source);
      // Not promoted: promoting would take the other volume's history; this one keeps its own.
      return switchTo(dataset, await snapshotNamed(source, snapshotId), false);
    },

    async destroySnapshot(dataset: string, snapshotId: string): Promise<void> {
      nameUnderRoot(root, dataset);
      const target = (await listSnapshots(dataset)).find((s) => s.id === snapshotId);
      if (!target) {
        throw notFound(`volume ${dataset} has no snapshot with id ${snapshotId}`, { dataset, snapshotId });
      }
      try {
        await zfs('destroy', target.name);
      } catch (error) {
        if (error instanceof PloyzError && /dependent clones/i.test(String(error.details?.stderr))) {
          throw new PloyzError(
            'STORAGE_BUSY',
            `snapshot ${target.label} of ${dataset} is the origin of a generation (a revert cloned it); it stays`,
            { details: { dataset, snapshotId }, cause: error },
          );
        }
        throw error;
      }
    },

    async growQuota(dataset: string, quotaBytes: number): Promise<Usage> {
      nameUnderRoot(root, dataset);
      checkQuota(quotaBytes);
      const gen = await live(dataset);
      checkQuotaNotBelowUsed(dataset, quotaBytes, gen.referenced);
      await zfs('set', `refquota=${quotaBytes}`, gen.dataset);
      return usageOf(await live(dataset));
    },

    async usage(dataset: string): Promise<Usage> {
      nameUnderRoot(root, dataset);
      return usageOf(await live(dataset));
    },

    async destroy(dataset: string): Promise<void> {
      nameUnderRoot(root, dataset);
      if (!(await exists(dataset))) return;
      await destroyContainer(dataset);
    },

    /**
     * A zfs snapshot cannot outlive its dataset: after the final snapshot every generation is
     * unmounted (mountpoint=none) and the container is renamed to `<root>/_retired/<ns>/<vol>-<label>`
     * with all its snapshots (`_` is no DNS label character, so it never collides with a namespace).
     */
    async retire(dataset: string, label: string): Promise<RetireResult> {
      const name = nameUnderRoot(root, dataset);
      checkSnapshotLabel(label);
      const kept = `${root}/_retired/${name.namespace}/${name.volume}-${label}`;
      if (await exists(kept)) {
        throw new PloyzError(
          'STORAGE_EXISTS',
          `a retired copy ${kept} already exists; it was left as it is`,
          {
            details: { dataset, kept },
          },
        );
      }
      const gen = await live(dataset);
      const snapshot = await takeSnapshot(dataset, gen.dataset, label);
      const path = await containerPath(dataset).catch(() => undefined);
      for (const g of await generations(dataset)) {
        if (g.mountpoint !== 'none') await whileBusy(() => zfs('set', 'mountpoint=none', g.dataset));
      }
      for (const parent of [`${root}/_retired`, `${root}/_retired/${name.namespace}`]) {
        if (!(await exists(parent))) await zfs('create', '-o', 'canmount=off', parent);
      }
      await whileBusy(() => zfs('rename', dataset, kept));
      if (path) await rmdir(path).catch(() => undefined);
      const final = `${kept}${gen.dataset.slice(dataset.length)}@${label}`;
      return {
        snapshot,
        kept,
        note: `a zfs snapshot cannot outlive its dataset, so the volume's dataset is kept unmounted with every snapshot, the final one ${final} included (its space is not freed). Read it with: zfs clone ${final} <pool>/<name>; free it with: zfs destroy -r ${kept}`,
      };
    },
  };

  /** The full name (`<gen>@<label>`) of a volume's snapshot by its guid; NOT_FOUND when it has none. */
  async function snapshotNamed(container: string, snapshotId: string): Promise<string> {
    const target = (await listSnapshots(container)).find((s) => s.id === snapshotId);
    if (!target) {
      throw notFound(`volume ${container} has no snapshot with id ${snapshotId}`, {
        dataset: container,
        snapshotId,
      });
    }
    return target.name;
  }

  /**
   * A revert's switch, to a snapshot of this volume (`promote`) or of another one: unmount the live
   * generation (a writer still holding it fails this with nothing changed), snapshot it as
   * `pre-revert-<ms>`, clone the target into the next generation with the live quota, mount that at
   * the same path. Any failure before the mount remounts the old generation.
   */
  async function switchTo(container: string, target: string, promote: boolean): Promise<RevertResult> {
    const current = await live(container);
    const path = current.mountpoint;
    const next = `${container}/g${Math.max(...(await generations(container)).map((g) => g.index)) + 1}`;
    await zfs('set', 'mountpoint=none', current.dataset);
    let cloned = false;
    try {
      const preRevert = await takeSnapshot(container, current.dataset, `pre-revert-${Date.now()}`);
      const quota = current.refquota === null ? [] : ['-o', `refquota=${current.refquota}`];
      await zfs('clone', '-o', 'mountpoint=none', ...quota, target, next);
      cloned = true;
      if (promote) {
        await zfs('promote', next);
        cloned = false; // promoted: it now holds history, never destroy it
      }
      await zfs('set', `mountpoint=${path}`, next);
      return { preRevert };
    } catch (error) {
      if (cloned) await whileBusy(() => zfs('destroy', next)).catch(() => undefined);
      await zfs('set', `mountpoint=${path}`, current.dataset).catch(() => undefined);
      throw error;
    }
  }

  /** Unmount every generation (STORAGE_BUSY leaves everything in place), then destroy the tree. */
  async function destroyContainer(container: string): Promise<void> {
    const path = await containerPath(container).catch(() => undefined);
    for (const gen of await generations(container)) {
      if (gen.mountpoint !== 'none') await zfs('set', 'mountpoint=none', gen.dataset);
    }
    await whileBusy(() => zfs('destroy', '-r', container));
    if (path) await rmdir(path).catch(() => undefined);
  }
}
