/**
 * One apply's volume work, around the nine steps (seed 004):
 * - stop-first: a `single` volume has one writer, so the old instance on it is stopped (not
 *   removed) before its candidate starts;
 * - a rollback stops the writers of every volume its target snapshotted and reverts each before
 *   the candidates start (they read the restored data);
 * - at each commit, a snapshot of every volume the commit covers, labelled with the deploy id,
 *   goes into the commit's facts; afterwards the volume records learn it;
 * - any failure before the commit that covers a volume undoes its revert (to the `<deploy>-pre`
 *   snapshot taken first) and starts the stopped writers again (volume-undo.ts); the durable
 *   `pending` mark on the volume record lets the next start do the same after a kill -9.
 * The plan's volume lines are volume-plan.ts.
 * Without a VolumeAgent (pure-logic tests) nothing here runs.
 */
import {
  type CommitSnapshot,
  type DeployCommit,
  isPloyzError,
  PloyzError,
  type StorageDriver,
  type VolumeRecord,
} from '@ployz/types';
import type { PlannedData } from '../model/branch.ts';
import type { DeployPlan } from '../model/plan.ts';
import {
  assertVolumeUnchanged,
  type CoveredVolume,
  coveredVolumes,
  foldSnapshot,
  type PlannedRevert,
} from '../model/volumes.ts';
import type { TakenSnapshot, VolumeAgent } from '../ports.ts';
import type { DeployRun } from './run.ts';
import { clearPending, undoVolumes } from './volume-undo.ts';

/** What this run did to one volume before its commit, to be undone if it fails first. */
interface VolumeUndo {
  target: CoveredVolume;
  /** Containers this run stopped (the old writers), started again by the undo. */
  stopped: string[];
  /** The snapshot of the state before this run reverted it (`<deploy>-pre`); null: not reverted. */
  preSnapshot: string | null;
}

/** A snapshot a machine took, as a commit records it. */
function commitSnapshotOf(machine: string, driver: StorageDriver, s: TakenSnapshot): CommitSnapshot {
  return {
    volume: s.volume,
    slot: s.slot,
    machine,
    driver,
    dataset: s.dataset,
    id: s.snapshot.id,
    label: s.snapshot.label,
    at: s.snapshot.created_at,
    bytes: s.snapshot.bytes,
  };
}

export class RunVolumes {
  readonly #run: DeployRun;
  /** By record name; removed when a commit covers the volume (its new state is committed then). */
  readonly #undo = new Map<string, VolumeUndo>();
  /** What this rollback restored (recorded in the final commit). */
  readonly #restored: CommitSnapshot[] = [];
  /** Volumes this run cloned (a branch), with the snapshot they came from: discarded on a failure before their commit. */
  #clones: { target: CoveredVolume; origin: string }[] = [];
  /**
   * By record name: the snapshot of a volume's own data taken before a promote replaced it
   * (`<deploy>-pre`): kept, and recorded with the commit that covers the volume.
   */
  readonly #kept = new Map<string, { id: string; at: string; bytes: number }>();
  /**
   * By record name: snapshots this run took only to be able to undo (`<deploy>-pre`, the driver's
   * pre-revert ones). Destroyed once the final commit covers the volume, or once an undo restored
   * it: no commit names them, and retention would never see them.
   */
  readonly #scratch = new Map<string, { target: CoveredVolume; ids: string[] }>();

  constructor(run: DeployRun) {
    this.#run = run;
  }

  get #agent(): VolumeAgent | undefined {
    return this.#run.engine.volumes;
  }

  #scratchOf(target: CoveredVolume): string[] {
    let entry = this.#scratch.get(target.name);
    if (entry === undefined) {
      entry = { target, ids: [] };
      this.#scratch.set(target.name, entry);
    }
    return entry.ids;
  }

  /**
   * Destroys a volume's undo-only snapshots (best effort: one the driver must keep, such as a zfs
   * clone's origin, stays; a failure is a warning, the deploy's outcome is decided already).
   */
  async #dropScratch(name: string): Promise<void> {
    const agent = this.#agent;
    const entry = this.#scratch.get(name);
    this.#scratch.delete(name);
    if (agent === undefined || entry === undefined || entry.ids.length === 0) return;
    const { target } = entry;
    try {
      const result = await agent.prune(target.machine, this.#run.manifest.namespace, target, entry.ids);
      this.#run.emit({
        type: 'volume',
        volume: target.name,
        machine: target.machine,
        action: 'pruned',
        detail: `${result.destroyed.length} snapshot(s) kept only for an undo destroyed${result.kept.length > 0 ? `; ${result.kept.length} the storage must keep` : ''}`,
      });
    } catch (error) {
      this.#run.emit({
        type: 'warning',
        message: `the undo-only snapshots of volume ${target.name} on ${target.machine} were not destroyed: ${(error as Error).message}`,
      });
    }
  }

  #undoOf(target: CoveredVolume): VolumeUndo {
    let undo = this.#undo.get(target.name);
    if (undo === undefined) {
      undo = { target, stopped: [], preSnapshot: null };
      this.#undo.set(target.name, undo);
    }
    return undo;
  }

  /**
   * The durable mark of what this run has pending on a volume (its record's `pending`), written
   * before the writers stop or the data changes, so a daemon killed before the commit is undone
   * by the next start's recovery. A volume without a record yet (never committed) has nothing to
   * restore.
   */
  async #markPending(target: CoveredVolume, preSnapshot: string | null): Promise<void> {
    const agent = this.#agent;
    if (agent === undefined) return;
    const run = this.#run;
    for (let attempt = 0; ; attempt++) {
      const current = await agent.getRecord(run.manifest.namespace, target.name);
      if (current === null) return;
      const pending = { deploy_id: run.deployId, pre_snapshot: preSnapshot };
      try {
        await agent.putRecord({ ...current.value, pending, updated_at: run.now() }, current.revision);
        return;
      } catch (error) {
        if (attempt > 0 || !isPloyzError(error) || error.code !== 'STORE_CONFLICT') throw error;
      }
    }
  }

  /** Owner/mode changes of existing volumes are refused before anything starts. */
  async check(plan: DeployPlan): Promise<void> {
    const agent = this.#agent;
    if (agent === undefined) return;
    const records = await agent.listRecords(this.#run.manifest.namespace);
    const covered = coveredVolumes(
      this.#run.manifest,
      plan,
      plan.services.map((s) => s.service),
    );
    for (const c of covered) {
      const record = records.find((r) => r.value.name === c.name);
      if (record !== undefined) assertVolumeUnchanged(c.spec, record.value);
    }
  }

  /**
   * Stops the writers of each volume, keeps its current state as `<deploy>-pre` (what a failure
   * restores), then reverts it to its planned snapshot.
   */
  async revert(reverts: readonly PlannedRevert[]): Promise<void> {
    const agent = this.#agent;
    if (agent === undefined) return;
    const run = this.#run;
    const ns = run.manifest.namespace;
    for (const { target, snapshot } of reverts) {
      const undo = this.#undoOf(target);
      await this.#markPending(target, undo.preSnapshot);
      undo.stopped.push(...(await agent.stopWriters(target.machine, ns, target)));
      const ref = { volume: target.volume, slot: target.slot };
      const pre = await agent.snapshot(target.machine, ns, [ref], `${run.deployId}-pre`);
      const preId = pre.snapshots[0]?.snapshot.id;
      if (preId === undefined) {
        throw new PloyzError(
          'STORAGE_FAILED',
          `volume ${target.name} on ${target.machine} took no snapshot before its revert; nothing was reverted`,
          {
            details: { volume: target.name, machine: target.machine },
          },
        );
      }
      await this.#markPending(target, preId);
      undo.preSnapshot = preId;
      const { preRevertId } = await agent.revert(target.machine, ns, target, snapshot.id);
      this.#scratchOf(target).push(preId, preRevertId);
      this.#restored.push(snapshot);
      run.emit({
        type: 'volume',
        volume: target.name,
        machine: target.machine,
        action: 'reverted',
        detail: `to the snapshot of ${snapshot.label} (${snapshot.at})`,
      });
    }
  }

  /**
   * A branch's and a promote's data work (model/branch.ts), before any candidate starts: a clone
   * is made of its source snapshot (a promote's of a snapshot of the branch taken now); a promote
   * --with-data stops the target's writers, snapshots its data (`<deploy>-pre`, kept: it is what a
   * failure restores, and the data just before the promote), then replaces it with a snapshot of
   * the branch's. Each step is on the record first (pending), so a failure or a kill -9 before the
   * commit restores the target.
   */
  async bring(work: readonly PlannedData[]): Promise<void> {
    const agent = this.#agent;
    const run = this.#run;
    const lineage = run.lineage;
    if (agent === undefined || lineage === null || work.length === 0) return;
    const ns = run.manifest.namespace;
    for (const w of work) {
      const { target, from } = w;
      const ref = { volume: target.volume, slot: target.slot };
      let previous: CommitSnapshot | null = null;
      if (w.kind === 'replace') {
        const undo = this.#undoOf(target);
        await this.#markPending(target, undo.preSnapshot);
        undo.stopped.push(...(await agent.stopWriters(target.machine, ns, target)));
        const pre = await this.#snapshotOne(target.machine, ns, target, `${run.deployId}-pre`);
        await this.#markPending(target, pre.id);
        undo.preSnapshot = pre.id;
        this.#kept.set(target.name, pre);
        previous = pre;
      }
      const snapshot =
        w.snapshot ??
        (await this.#snapshotOne(from.machine, lineage.from_namespace, from, `${run.deployId}-promote`));
      const source = { namespace: lineage.from_namespace, volume: from.volume, slot: from.slot };
      if (w.kind === 'clone') {
        const cloned = await agent.clone(
          target.machine,
          ns,
          ref,
          { ...source, snapshotId: snapshot.id },
          target.spec.quota_bytes,
        );
        this.#clones.push({ target, origin: snapshot.id });
        run.emit({
          type: 'volume',
          volume: target.name,
          machine: target.machine,
          action: 'cloned',
          detail: `copy-on-write clone of ${lineage.from_namespace}/${from.name} at ${snapshot.label} (${snapshot.bytes} bytes referenced) in ${cloned.tookMs} ms`,
        });
      } else {
        const { preRevertId } = await agent.replace(target.machine, ns, ref, {
          ...source,
          snapshotId: snapshot.id,
        });
        this.#scratchOf(target).push(preRevertId);
        run.emit({
          type: 'volume',
          volume: target.name,
          machine: target.machine,
          action: 'replaced',
          detail: `by ${lineage.from_namespace}/${from.name} at ${snapshot.label}; its own data kept as ${previous?.label}`,
        });
      }
      run.lineage = {
        ...lineage,
        ...run.lineage,
        volumes: (run.lineage ?? lineage).volumes.map((l) =>
          l.volume === target.volume && l.slot === target.slot ? { ...l, snapshot, previous } : l,
        ),
      };
    }
  }

  /** One volume's snapshot under `label`, as a commit records it. */
  async #snapshotOne(
    machine: string,
    namespace: string,
    volume: { volume: string; slot: number | null; name: string },
    label: string,
  ): Promise<CommitSnapshot> {
    const agent = this.#agent;
    if (agent === undefined) throw new Error('volumes: no agent');
    const taken = await agent.snapshot(
      machine,
      namespace,
      [{ volume: volume.volume, slot: volume.slot }],
      label,
    );
    const s = taken.snapshots[0];
    if (s === undefined) {
      throw new PloyzError(
        'STORAGE_FAILED',
        `volume ${namespace}/${volume.name} on ${machine} took no snapshot (${taken.driver} storage); nothing was changed`,
        { details: { volume: volume.name, machine } },
      );
    }
    return commitSnapshotOf(machine, taken.driver, s);
  }

  /**
   * Stop-first for the `single` volumes of `services` whose slot gets a new instance: the old
   * writer is stopped before its candidate starts (the gap the preview announces).
   */
  async stopOldWriters(plan: DeployPlan, services: readonly string[]): Promise<void> {
    const agent = this.#agent;
    if (agent === undefined) return;
    const ns = this.#run.manifest.namespace;
    const starting = new Set(
      plan.services
        .filter((s) => services.includes(s.service) && s.slots.some((slot) => slot.action === 'start'))
        .map((s) => s.service),
    );
    for (const c of coveredVolumes(this.#run.manifest, plan, [...starting])) {
      if (c.spec.scope !== 'single') continue;
      const undo = this.#undoOf(c);
      await this.#markPending(c, undo.preSnapshot);
      const stopped = await agent.stopWriters(c.machine, ns, c);
      undo.stopped.push(...stopped);
      if (stopped.length > 0) {
        this.#run.emit({
          type: 'volume',
          volume: c.name,
          machine: c.machine,
          action: 'writer_stopped',
          detail: `${stopped.length} old writer(s) stopped before the candidate starts (one writer per single volume)`,
        });
      }
    }
  }

  /** The commit with a snapshot of every volume of `services` (a failure here fails before the commit). */
  async withSnapshots(
    commit: DeployCommit,
    plan: DeployPlan,
    services: readonly string[],
  ): Promise<DeployCommit> {
    const agent = this.#agent;
    const run = this.#run;
    const covered = coveredVolumes(run.manifest, plan, services);
    const volumes = run.manifest.volumes.filter((v) => covered.some((c) => c.volume === v.name));
    const reverted = commit.kind === 'final' ? [...this.#restored] : [];
    if (agent === undefined || covered.length === 0) return { ...commit, volumes, reverted };
    const snapshots: CommitSnapshot[] = [];
    for (const machine of new Set(covered.map((c) => c.machine))) {
      const refs = covered
        .filter((c) => c.machine === machine)
        .map((c) => ({ volume: c.volume, slot: c.slot }));
      let taken: Awaited<ReturnType<VolumeAgent['snapshot']>>;
      try {
        taken = await agent.snapshot(machine, run.manifest.namespace, refs, run.deployId);
      } catch (error) {
        throw new PloyzError(
          isPloyzError(error) && error.kind === 'user' ? error.code : 'STORAGE_FAILED',
          `the snapshot of ${refs.map((r) => r.volume).join(', ')} on ${machine} failed before the commit, so nothing was committed: ${(error as Error).message}`,
          { details: { machine }, cause: error },
        );
      }
      for (const s of taken.snapshots) snapshots.push(commitSnapshotOf(machine, taken.driver, s));
    }
    for (const s of snapshots) {
      run.emit({
        type: 'volume',
        volume: s.slot === null ? s.volume : `${s.volume}-${s.slot}`,
        machine: s.machine,
        action: 'snapshot',
        detail: `${s.driver} snapshot ${s.label} (${s.bytes} bytes referenced)`,
      });
    }
    return { ...commit, volumes, snapshots, reverted };
  }

  /** After a commit: each covered volume's record learns its snapshot (compare-and-set, retried once). */
  async record(commit: DeployCommit, plan: DeployPlan, services: readonly string[]): Promise<void> {
    const agent = this.#agent;
    if (agent === undefined) return;
    const run = this.#run;
    const ns = run.manifest.namespace;
    const covered = coveredVolumes(run.manifest, plan, services);
    // The commit is durable: what it covers is not undone any more, whatever fails next.
    for (const c of covered) this.#undo.delete(c.name);
    this.#clones = this.#clones.filter((x) => !covered.some((c) => c.name === x.target.name));
    if (commit.kind === 'final') {
      this.#undo.clear();
      this.#clones = [];
    }
    for (const c of covered) {
      const taken = commit.snapshots.find((s) => s.volume === c.volume && s.slot === c.slot);
      const kept = this.#kept.get(c.name);
      let written: { record: VolumeRecord; revision: number } | undefined;
      for (let attempt = 0; written === undefined; attempt++) {
        const current = await agent.getRecord(ns, c.name);
        let next = foldSnapshot(current?.value ?? null, c, commit, taken, ns, run.now());
        // A promote's snapshot of the data it replaced is this deploy's too, older than the commit's.
        if (kept !== undefined && !next.snapshots.some((s) => s.id === kept.id)) {
          const own = { deploy_id: commit.deploy_id, commit_id: commit.id, ...kept };
          next = { ...next, snapshots: [...next.snapshots.slice(0, -1), own, ...next.snapshots.slice(-1)] };
        }
        try {
          written = { record: next, revision: await agent.putRecord(next, current?.revision ?? null) };
        } catch (error) {
          if (attempt > 0 || !isPloyzError(error) || error.code !== 'STORE_CONFLICT') throw error;
        }
      }
      if (commit.kind === 'final') await this.#prune(c, written.record, written.revision);
      if (commit.kind === 'final') await this.#dropScratch(c.name);
    }
  }

  /**
   * Retention after a final commit: the snapshots of all but the newest `keep_snapshots` deploys
   * are destroyed on the machine and dropped from the record; one the machine must keep stays
   * listed. A failure here is a warning: the deploy is committed.
   */
  async #prune(c: CoveredVolume, record: VolumeRecord, revision: number): Promise<void> {
    const agent = this.#agent;
    const excess = record.snapshots.length - record.keep_snapshots;
    if (agent === undefined || excess <= 0) return;
    const old = record.snapshots.slice(0, excess).map((s) => s.id);
    try {
      const result = await agent.prune(c.machine, record.namespace, c, old);
      const gone = new Set(result.destroyed);
      if (gone.size > 0) {
        const snapshots = record.snapshots.filter((s) => !gone.has(s.id));
        await agent.putRecord({ ...record, snapshots, updated_at: this.#run.now() }, revision);
      }
      const kept = result.kept.length > 0 ? `; kept ${result.kept.map((k) => k.reason).join('; ')}` : '';
      this.#run.emit({
        type: 'volume',
        volume: c.name,
        machine: c.machine,
        action: 'pruned',
        detail: `${gone.size} snapshot(s) older than the last ${record.keep_snapshots} deploys destroyed${kept}`,
      });
    } catch (error) {
      this.#run.emit({
        type: 'warning',
        message: `retention of volume ${c.name} on ${c.machine} did not run: ${(error as Error).message}`,
      });
    }
  }

  /**
   * A failure before the commit that covers a volume: its candidates stop, a reverted volume gets
   * its pre-revert state back, the old writers start again and the pending mark is cleared.
   * Errors are collected, not thrown: the caller is already failing and says what could not be
   * restored (the next start's recovery tries again while the mark stays).
   */
  async undo(): Promise<string[]> {
    const agent = this.#agent;
    if (agent === undefined) return [];
    const run = this.#run;
    const clones = this.#clones;
    this.#clones = [];
    const discardProblems: string[] = [];
    for (const { target, origin } of clones) {
      // Its writers are this run's candidates: stopped first, removed with the candidates after.
      try {
        await agent.stopWriters(target.machine, run.manifest.namespace, target);
        const discarded = await agent.discard(target.machine, run.manifest.namespace, target, origin);
        run.emit({
          type: 'volume',
          volume: target.name,
          machine: target.machine,
          action: 'discarded',
          detail: discarded
            ? 'the clone no commit covered is destroyed'
            : 'the clone was changed meanwhile (it has a snapshot of its own): left as it is',
        });
      } catch (error) {
        discardProblems.push(`volume ${target.name}: discarding the clone: ${(error as Error).message}`);
      }
    }
    const entries = [...this.#undo.values()].map((u) => ({
      target: u.target,
      preSnapshot: u.preSnapshot,
      containers: u.stopped,
    }));
    this.#undo.clear();
    // Nothing committed a promote's replace: its kept snapshot is only the undo's now.
    for (const e of entries) {
      const kept = this.#kept.get(e.target.name);
      if (kept !== undefined) this.#scratchOf(e.target).push(kept.id);
    }
    this.#kept.clear();
    const problems = await undoVolumes(agent, run.manifest.namespace, entries, (e, preRevertId) =>
      this.#scratch.get(e.target.name)?.ids.push(preRevertId),
    );
    for (const e of entries) {
      if (problems.some((p) => p.volume === e.target.name)) continue;
      if (e.preSnapshot !== null) {
        run.emit({
          type: 'volume',
          volume: e.target.name,
          machine: e.target.machine,
          action: 'restored',
          detail: 'the data from before this deploy is live again',
        });
        await this.#dropScratch(e.target.name);
      }
      await clearPending(agent, run.manifest.namespace, e.target.name, run.deployId).catch(
        (error: unknown) => {
          problems.push({
            volume: e.target.name,
            message: `clearing its pending mark: ${(error as Error).message}`,
          });
        },
      );
    }
    return [...discardProblems, ...problems.map((p) => `volume ${p.volume}: ${p.message}`)];
  }
}
