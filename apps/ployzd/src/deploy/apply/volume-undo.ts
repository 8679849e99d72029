/**
 * Undoing what a deploy did to volumes before the commit that covers them — in the run that
 * fails (RunVolumes.undo) and, for a daemon killed meanwhile, at the next start from the durable
 * `pending` marks of the volume records (recoverVolumes).
 */
import type { VolumeRecord } from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import type { VolumeAgent } from '../ports.ts';

export interface UndoEntry {
  target: { name: string; machine: string; volume: string; slot: number | null };
  preSnapshot: string | null;
  /** Containers to start again once every volume is restored (the old writers). */
  containers: readonly string[];
}

/**
 * In three passes, so a writer that mounts several of the volumes starts once, on restored data:
 * stop every volume's writers (the candidates), restore each pre-revert state, then start the old
 * writers. A volume whose stop or restore failed is reported; its writers are not started.
 */
export async function undoVolumes(
  agent: VolumeAgent,
  namespace: string,
  entries: readonly UndoEntry[],
  /** Each restore's own pre-revert snapshot (the failed candidates' data), for the caller to drop. */
  onRestored: (e: UndoEntry, preRevertId: string) => void = () => {},
): Promise<{ volume: string; message: string }[]> {
  const problems: { volume: string; message: string }[] = [];
  const refOf = (e: UndoEntry) => ({ volume: e.target.volume, slot: e.target.slot });
  const failed = (e: UndoEntry, error: unknown) =>
    problems.push({ volume: e.target.name, message: `on ${e.target.machine}: ${(error as Error).message}` });
  for (const e of entries)
    await agent.stopWriters(e.target.machine, namespace, refOf(e)).catch((err: unknown) => failed(e, err));
  for (const e of entries) {
    if (e.preSnapshot === null || problems.some((p) => p.volume === e.target.name)) continue;
    await agent
      .revert(e.target.machine, namespace, refOf(e), e.preSnapshot)
      .then((r) => onRestored(e, r.preRevertId))
      .catch((err: unknown) => failed(e, err));
  }
  const byMachine = new Map<string, Set<string>>();
  for (const e of entries) {
    if (problems.some((p) => p.volume === e.target.name)) continue;
    const set = byMachine.get(e.target.machine) ?? new Set<string>();
    for (const c of e.containers) set.add(c);
    byMachine.set(e.target.machine, set);
  }
  for (const [machine, containers] of byMachine) {
    await agent
      .startWriters(machine, namespace, [...containers])
      .catch((error: unknown) =>
        problems.push({ volume: `(writers on ${machine})`, message: (error as Error).message }),
      );
  }
  return problems;
}

export async function clearPending(
  agent: VolumeAgent,
  namespace: string,
  name: string,
  deployId: string,
): Promise<void> {
  const current = await agent.getRecord(namespace, name);
  if (current?.value.pending?.deploy_id !== deployId) return;
  await agent.putRecord({ ...current.value, pending: null }, current.revision);
}

export interface VolumeRecoveryReport {
  volume: string;
  namespace: string;
  deploy_id: string;
  outcome: 'committed' | 'restored' | 'failed';
  detail: string;
}

const OPEN_STATES: ReadonlySet<string> = new Set(['planning', 'applying', 'checkpoint_committed']);

/**
 * At start, after the deploys are recovered: a volume still marked pending by a deploy that is
 * no longer in flight is settled. Its deploy committed (a commit covered it) → the mark goes.
 * Otherwise the deploy died before that commit → its candidates stop, the pre-revert state comes
 * back, the committed instances of the namespace on that machine start again, the mark goes.
 */
export async function recoverVolumes(engine: EngineOptions): Promise<VolumeRecoveryReport[]> {
  const agent = engine.volumes;
  if (agent === undefined) return [];
  const reports: VolumeRecoveryReport[] = [];
  // One undo per interrupted deploy and namespace: its volumes together (a writer may mount several).
  const groups = new Map<string, VolumeRecord[]>();
  for (const { value: record } of await agent.listRecords()) {
    if (record.pending === null) continue;
    const key = `${record.namespace}/${record.pending.deploy_id}`;
    groups.set(key, [...(groups.get(key) ?? []), record]);
  }
  for (const records of groups.values()) {
    const first = records[0];
    const deployId = first?.pending?.deploy_id;
    if (first === undefined || deployId === undefined) continue;
    const ns = first.namespace;
    const status = await engine.store.getStatus(deployId);
    if (status !== null && OPEN_STATES.has(status.value.state)) continue; // still in flight elsewhere
    const commits = (await engine.store.listCommits(ns)).filter((c) => c.deploy_id === deployId);
    const covered = (r: VolumeRecord) => commits.some((c) => c.volumes.some((v) => v.name === r.volume));
    const toUndo = records.filter((r) => !covered(r));
    let problems: { volume: string; message: string }[] = [];
    /** By volume name: the undo-only snapshots a restore leaves (the pre snapshot, the restore's own). */
    const scratch = new Map<string, string[]>();
    if (toUndo.length > 0) {
      const [releases, instances] = await Promise.all([
        engine.store.listReleases(ns),
        engine.store.listInstances(ns),
      ]);
      const live = new Set(releases.flatMap((r) => r.value.slots.map((s) => s.instance)));
      const containersOn = (machine: string) =>
        instances.flatMap(({ value: i }) =>
          live.has(i.id) && i.machine === machine && i.container_id !== null ? [i.container_id] : [],
        );
      problems = await undoVolumes(
        agent,
        ns,
        toUndo.map((r) => ({
          target: r,
          preSnapshot: r.pending?.pre_snapshot ?? null,
          containers: containersOn(r.machine),
        })),
        (e, preRevertId) => {
          const pre = e.preSnapshot === null ? [] : [e.preSnapshot];
          scratch.set(e.target.name, [...pre, preRevertId]);
        },
      );
    }
    for (const r of records) {
      const base = { volume: r.name, namespace: ns, deploy_id: deployId };
      const problem = problems.find((p) => p.volume === r.name || p.volume.startsWith('(writers on'));
      if (problem !== undefined) {
        reports.push({ ...base, outcome: 'failed', detail: problem.message });
        continue;
      }
      await clearPending(agent, ns, r.name, deployId);
      const undone = toUndo.includes(r);
      const drop = scratch.get(r.name) ?? [];
      // Best effort, as in a live undo: a snapshot the storage must keep (a zfs origin) stays.
      if (drop.length > 0) await agent.prune(r.machine, ns, r, drop).catch(() => undefined);
      reports.push({
        ...base,
        outcome: undone ? 'restored' : 'committed',
        detail: undone
          ? `its deploy died before the commit: ${r.pending?.pre_snapshot ? 'the pre-revert data restored and' : ''} the writers started again`
          : 'its deploy committed; the pending mark is cleared',
      });
    }
  }
  return reports;
}
