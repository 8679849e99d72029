/**
 * One apply's state, shared by its steps: the records it keeps truthful (status, phases), the
 * commits it appended, the candidates it started, the probe results, and its step events.
 */
import type {
  DeployCommit,
  DeployStatusRecord,
  InstanceRecord,
  Lineage,
  PhaseRecord,
  PloyzError,
} from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import type { CommitContext } from '../model/commits.ts';
import { type DeployEvent, type EmitDeployEvent, STEPS, type StepNumber } from '../model/events.ts';
import type { MachineCapacity } from '../model/placement.ts';
import type { DeployPlan } from '../model/plan.ts';
import type { DeployManifest, DeployService } from '../model/spec.ts';
import type { DerivedDeploy } from './derived.ts';

export interface ApplyOptions {
  actor: string;
  /** Set for a rollback: the deploy whose services this one restores. */
  rollbackOf?: string | null;
  /** Apply (and commit) even when the plan is clean. Rollbacks use it. */
  force?: boolean;
  /** A rollback that restores services only: volumes without a snapshot of the target keep their data. */
  withoutVolumeRevert?: boolean;
  /** Cold starts in flight per machine; default from the machine's cores (start-queue.ts). */
  startConcurrency?: number;
  /** A branch or a promote (derived.ts): the data work before the candidates start, and the lineage. */
  derived?: DerivedDeploy;
  /** A namespace's removal (namespace rm): its volumes kept, or retired after the commit (volume-retire.ts). */
  removal?: { deleteVolumes: boolean };
}

export interface ApplyResult {
  noop: boolean;
  plan: DeployPlan;
  status: DeployStatusRecord | null;
}

export type StepExtra = { phase?: string; detail?: string };

export class DeployRun {
  readonly engine: EngineOptions;
  readonly manifest: DeployManifest;
  readonly request: ApplyOptions;
  readonly emit: EmitDeployEvent;
  readonly deployId: string;
  /** Aborted when the lease is lost: in-flight starts and readiness waits stop. */
  readonly abort = new AbortController();
  leaseError: PloyzError | null = null;
  /** A branch's or a promote's lineage (set at step 3), recorded by every commit. */
  lineage: Lineage | null = null;
  status: DeployStatusRecord | null = null;
  readonly phases = new Map<string, PhaseRecord>();
  readonly commits: DeployCommit[] = [];
  /** Candidates this deploy started (latest record each, in start order), so a failure can discard them. */
  readonly candidates = new Map<string, InstanceRecord>();
  /** Probe results of step 3: machine id → capacity. */
  readonly capacity = new Map<string, MachineCapacity>();
  /** Machines the probe of step 3 asked and that did not answer. */
  readonly unavailable = new Set<string>();
  /**
   * Store revisions of the releases of this namespace as read under the lease (step 3) and
   * as written since: a commit folds into them compare-and-set, so a release someone else
   * changed meanwhile is STORE_CONFLICT, never overwritten.
   */
  readonly releaseRevisions = new Map<string, number>();
  readonly specs: ReadonlyMap<string, DeployService>;
  /** The revision of each record this run wrote last: the expected revision of its next write. */
  #statusRevision: number | null = null;
  readonly #phaseRevisions = new Map<string, number>();
  readonly #candidateRevisions = new Map<string, number>();

  constructor(engine: EngineOptions, manifest: DeployManifest, request: ApplyOptions, emit: EmitDeployEvent) {
    this.engine = engine;
    this.manifest = manifest;
    this.request = request;
    this.emit = emit;
    this.deployId = engine.newDeployId();
    this.specs = new Map(manifest.services.map((s) => [s.name, s]));
  }

  now(): string {
    return this.engine.clock.now().toISOString();
  }

  /** Throws once the lease is lost: nothing more may be written under it. */
  assertLease(): void {
    if (this.leaseError) throw this.leaseError;
  }

  step(step: StepNumber, state: 'started' | 'done' | 'skipped', extra: StepExtra = {}): void {
    const def = STEPS[step - 1];
    if (def === undefined) return;
    const event: DeployEvent = { type: 'step', step, name: def.name, state, at: this.now(), ...extra };
    this.emit(event);
  }

  /** Starts a step: its event, the step in status, and the test pause hook. */
  async enter(step: StepNumber, extra: StepExtra = {}): Promise<void> {
    this.assertLease();
    this.step(step, 'started', extra);
    if (this.status !== null && this.status.step < step) await this.writeStatus({ step });
    if (this.engine.pauseAtStep === step) {
      this.emit({ type: 'paused', step, name: STEPS[step - 1]?.name ?? 'unknown', pid: process.pid });
      // Test hook: wait here until the process is killed (kill -9 at a named step).
      await new Promise<never>(() => {});
    }
  }

  /** Step 4: the status record is created (a deploy id is never reused). */
  async createStatus(record: DeployStatusRecord): Promise<void> {
    this.status = record;
    this.#statusRevision = await this.engine.store.putStatus(record, null);
  }

  async writeStatus(patch: Partial<DeployStatusRecord>): Promise<void> {
    if (this.status === null) return;
    this.status = { ...this.status, ...patch, updated_at: this.now() };
    this.#statusRevision = await this.engine.store.putStatus(this.status, this.#statusRevision);
  }

  async createPhase(record: PhaseRecord): Promise<void> {
    this.phases.set(record.phase, record);
    this.#phaseRevisions.set(record.phase, await this.engine.store.putPhase(record, null));
  }

  async writePhase(id: string, patch: Partial<PhaseRecord>): Promise<void> {
    const cur = this.phases.get(id);
    if (cur === undefined) return;
    const next = { ...cur, ...patch, updated_at: this.now() };
    this.phases.set(id, next);
    this.#phaseRevisions.set(
      id,
      await this.engine.store.putPhase(next, this.#phaseRevisions.get(id) ?? null),
    );
  }

  /** A candidate's record: created at its first write, then updated at the revision written. */
  async saveCandidate(record: InstanceRecord): Promise<void> {
    const expected = this.#candidateRevisions.get(record.id) ?? null;
    this.candidates.set(record.id, record);
    this.#candidateRevisions.set(record.id, await this.engine.store.putInstance(record, expected));
  }

  commitContext(): CommitContext {
    return {
      deployId: this.deployId,
      actor: this.request.actor,
      rollbackOf: this.request.rollbackOf ?? null,
      lineage: this.lineage,
      at: this.now(),
    };
  }
}
