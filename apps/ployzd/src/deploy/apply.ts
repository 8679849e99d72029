/**
 * The apply orchestrator: the nine steps of DESIGN.md §5 over the ports. All decisions are made
 * by the pure planner/placement/commit code; this file sequences I/O and keeps status truthful.
 *
 * Failure before the first commit → `failed`, candidates removed, nothing live changed.
 * Failure after a commit → `FailedAfterCheckpoint`: committed facts stay durable and live.
 */
import {
  type DeployCommit,
  type DeployStatusRecord,
  type ErrorBody,
  type InstanceRecord,
  type MachineRecord,
  type PhaseRecord,
  PloyzError,
  type ReleaseRecord,
  type RoutingEvent,
} from '@ployz/types';
import { checkpointCommit, finalCommit, releasesOf } from './commits.ts';
import { type EngineOptions, leaseKey, leaseOwner } from './context.ts';
import { type DeployEvent, type EmitDeployEvent, STEPS, type StepNumber } from './events.ts';
import type { MachineCapacity } from './placement.ts';
import { type DeployPlan, planDeploy, type ServicePlan, type SlotPlan } from './plan.ts';
import type { HeldLease } from './ports.ts';
import type { DeployManifest, DeployService } from './spec.ts';

export interface ApplyOptions {
  actor: string;
  /** Set for a rollback: the deploy whose services this one restores. */
  rollbackOf?: string | null;
  /** Apply (and commit) even when the plan is clean. Rollbacks use it. */
  force?: boolean;
}

export interface ApplyResult {
  noop: boolean;
  plan: DeployPlan;
  status: DeployStatusRecord | null;
}

function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof PloyzError) return err.toJSON();
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** Reads stored intent for one namespace and plans against the given capacity. */
export async function previewPlan(
  opts: EngineOptions,
  manifest: DeployManifest,
  capacity?: ReadonlyMap<string, MachineCapacity>,
): Promise<{ plan: DeployPlan; machines: MachineRecord[] }> {
  const [machines, releases, instances] = await Promise.all([
    opts.store.listMachines(),
    opts.store.listReleases(manifest.namespace),
    opts.store.listInstances(manifest.namespace),
  ]);
  // Without probes (preview), every known machine is assumed to answer.
  const cap =
    capacity ??
    new Map(
      machines.map((m) => [m.id, { cpus: 0, memory_free_mb: Number.MAX_SAFE_INTEGER, disk_free_mb: 0 }]),
    );
  const revisions = new Map(
    manifest.services.map((s) => [s.name, opts.codec.revisionId(manifest.namespace, s)]),
  );
  const plan = planDeploy({
    manifest,
    revisions,
    releases,
    instances,
    machines,
    capacity: cap,
    newInstanceId: (service, slot) => opts.newInstanceId(manifest.namespace, service, slot),
  });
  return { plan, machines };
}

export class Apply {
  private readonly opts: EngineOptions;
  private readonly manifest: DeployManifest;
  private readonly options: ApplyOptions;
  private readonly emit: EmitDeployEvent;
  private readonly abort = new AbortController();
  private lease: HeldLease | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private leaseError: PloyzError | null = null;
  private status: DeployStatusRecord | null = null;
  private phases = new Map<string, PhaseRecord>();
  private commits: DeployCommit[] = [];
  /** Candidates this deploy started (and their records), so a failure can discard them. */
  private candidates: InstanceRecord[] = [];
  private readonly deployId: string;

  constructor(opts: EngineOptions, manifest: DeployManifest, options: ApplyOptions, emit: EmitDeployEvent) {
    this.opts = opts;
    this.manifest = manifest;
    this.options = options;
    this.emit = emit;
    this.deployId = opts.newDeployId();
  }

  private now(): string {
    return this.opts.clock.now().toISOString();
  }

  private step(
    step: StepNumber,
    state: 'started' | 'done' | 'skipped',
    extra: { phase?: string; detail?: string } = {},
  ): void {
    const def = STEPS[step - 1];
    if (def === undefined) return;
    const event: DeployEvent = { type: 'step', step, name: def.name, state, at: this.now(), ...extra };
    this.emit(event);
  }

  private async enter(step: StepNumber, extra: { phase?: string; detail?: string } = {}): Promise<void> {
    if (this.leaseError) throw this.leaseError;
    this.step(step, 'started', extra);
    if (this.status !== null && this.status.step < step) {
      await this.writeStatus({ step });
    }
    if (this.opts.pauseAtStep === step) {
      this.emit({ type: 'paused', step, name: STEPS[step - 1]?.name ?? 'unknown', pid: process.pid });
      // Test hook: wait here until the process is killed (kill -9 at a named step).
      await new Promise<never>(() => {});
    }
  }

  private async writeStatus(patch: Partial<DeployStatusRecord>): Promise<void> {
    if (this.status === null) return;
    this.status = { ...this.status, ...patch, updated_at: this.now() };
    await this.opts.store.putStatus(this.status);
  }

  private async writePhase(id: string, patch: Partial<PhaseRecord>): Promise<void> {
    const cur = this.phases.get(id);
    if (cur === undefined) return;
    const next = { ...cur, ...patch, updated_at: this.now() };
    this.phases.set(id, next);
    await this.opts.store.putPhase(next);
  }

  async run(): Promise<ApplyResult> {
    const { store } = this.opts;
    // ---- 1. preview
    await this.enter(1);
    const first = await previewPlan(this.opts, this.manifest);
    this.emit({ type: 'plan', plan: first.plan });
    if (!first.plan.changed && !this.options.force) {
      this.step(1, 'done', { detail: 'no changes' });
      const result: ApplyResult = { noop: true, plan: first.plan, status: null };
      this.emit({ type: 'result', ...result });
      return result;
    }
    this.step(1, 'done', { detail: summarise(first.plan) });

    // ---- 2. lease
    await this.enter(2);
    this.lease = await store.acquireLease(
      leaseKey(this.manifest.namespace),
      leaseOwner(this.opts),
      this.opts.leaseTtlMs ?? 15_000,
      `deploy ${this.deployId}`,
    );
    this.startRenewing();
    this.step(2, 'done', { detail: `${this.lease.record.key} held until ${this.lease.record.expires_at}` });

    try {
      return await this.applyHeld(first.machines);
    } finally {
      this.stopRenewing();
      await this.lease.release().catch(() => {});
    }
  }

  private startRenewing(): void {
    const every = Math.max(500, Math.floor((this.opts.leaseTtlMs ?? 15_000) / 3));
    this.renewTimer = setInterval(() => {
      this.lease?.renew().catch((err: unknown) => {
        this.leaseError = new PloyzError(
          'LEASE_LOST',
          'the namespace deploy lease could not be renewed; the deploy stops',
          { cause: err },
        );
        this.abort.abort(this.leaseError);
      });
    }, every);
    this.renewTimer.unref();
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
  }

  private async applyHeld(machines: MachineRecord[]): Promise<ApplyResult> {
    const { store, agent } = this.opts;
    // ---- 3. probe (and re-plan against fresh state now that the lease is ours)
    await this.enter(3);
    const capacity = new Map<string, MachineCapacity>();
    await Promise.all(
      machines
        .filter((m) => m.lifecycle === 'active')
        .map(async (m) => {
          try {
            capacity.set(m.id, await agent.capacity(m.id));
            this.emit({ type: 'machine', machine: m.id, available: true });
          } catch (err) {
            this.emit({ type: 'machine', machine: m.id, available: false, detail: toErrorBody(err).message });
          }
        }),
    );
    const { plan } = await previewPlan(this.opts, this.manifest, capacity);
    this.emit({ type: 'plan', plan });
    this.step(3, 'done', { detail: `${capacity.size}/${machines.length} machine(s) available` });

    // ---- 4. applying status + pending phases: the first durable writes
    const started = this.now();
    this.status = {
      deploy_id: this.deployId,
      namespace: plan.namespace,
      state: 'applying',
      manifest_hash: plan.manifest_hash,
      phases: plan.phases.map((p) => p.id),
      commits: [],
      rollback_of: this.options.rollbackOf ?? null,
      actor: this.options.actor,
      step: 4,
      error: null,
      started_at: started,
      updated_at: started,
    };
    this.emit({
      type: 'deploy',
      deploy_id: this.deployId,
      namespace: plan.namespace,
      rollback_of: this.status.rollback_of,
    });
    await this.enter(4);
    await store.putStatus(this.status);
    for (const p of plan.phases) {
      const owned = plan.services.filter((s) => s.phase === p.id);
      const record: PhaseRecord = {
        deploy_id: this.deployId,
        phase: p.id,
        index: p.index,
        commit_policy: p.commit_policy,
        services: owned.map((s) => s.service),
        volumes: [],
        work: [
          ...owned.flatMap((s) =>
            s.slots
              .filter((x) => x.action === 'start')
              .map((x) => ({
                kind: 'start' as const,
                service: s.service,
                slot: x.slot,
                machine: x.machine,
                instance: x.instance,
              })),
          ),
          ...owned.flatMap((s) =>
            s.stops.map((x) => ({
              kind: 'stop' as const,
              service: s.service,
              slot: x.slot,
              machine: x.machine,
              instance: x.instance,
            })),
          ),
        ],
        state: 'pending',
        commit_id: null,
        error: null,
        updated_at: started,
      };
      this.phases.set(p.id, record);
      await store.putPhase(record);
    }
    const specs = new Map(this.manifest.services.map((s) => [s.name, s]));
    for (const s of plan.services) {
      const spec = specs.get(s.service);
      if (spec !== undefined && s.revision !== null) {
        await store.putRevision(this.opts.codec.toRecord(plan.namespace, spec, started));
      }
    }
    this.step(4, 'done', { detail: `deploy ${this.deployId}` });

    try {
      // ---- 5/6. phases, checkpoint commits
      const checkpointed = new Set<string>();
      for (const phase of plan.phases) {
        await this.enter(5, { phase: phase.id });
        await this.writePhase(phase.id, { state: 'running' });
        const owned = plan.services.filter((s) => s.phase === phase.id);
        await this.startCandidates(plan, owned, specs);
        await this.writePhase(phase.id, { state: 'done' });
        this.step(5, 'done', { phase: phase.id, detail: `${phase.starts} candidate(s) ready` });
        if (phase.commit_policy === 'checkpoint') {
          await this.enter(6, { phase: phase.id });
          const commit = checkpointCommit(plan, phase.id, this.commitContext());
          await this.commit(commit, phase.id, 'checkpoint_committed');
          await this.publishRouting(commit, owned);
          checkpointed.add(phase.id);
          this.step(6, 'done', { phase: phase.id, detail: commit.id });
        }
      }
      if (checkpointed.size === 0) this.step(6, 'skipped', { detail: 'no checkpoint phases' });

      // ---- 7. final commit
      await this.enter(7);
      const final = finalCommit(plan, checkpointed, this.commitContext());
      await this.commit(final, null, 'applying');
      for (const phase of plan.phases) {
        if (!checkpointed.has(phase.id))
          await this.writePhase(phase.id, { state: 'committed', commit_id: final.id });
      }
      this.step(7, 'done', { detail: final.id });

      // ---- 8. routing
      await this.enter(8);
      await this.publishRouting(
        final,
        plan.services.filter((s) => !checkpointed.has(s.phase)),
      );
      this.step(8, 'done');
    } catch (err) {
      return await this.fail(err);
    }

    // ---- 9. cleanup: failure here leaves the deploy live (FailedAfterCheckpoint).
    try {
      await this.enter(9);
      await this.cleanup(plan);
      this.step(9, 'done');
      await this.writeStatus({ state: 'committed', step: 9 });
    } catch (err) {
      return await this.fail(err);
    }
    const result: ApplyResult = { noop: false, plan, status: this.status };
    this.emit({ type: 'result', ...result });
    return result;
  }

  private commitContext() {
    return {
      deployId: this.deployId,
      actor: this.options.actor,
      rollbackOf: this.options.rollbackOf ?? null,
      at: this.now(),
    };
  }

  /** Appends a commit, folds it into releases, links phases, records it in status. */
  private async commit(
    commit: DeployCommit,
    phase: string | null,
    state: DeployStatusRecord['state'],
  ): Promise<void> {
    const { store } = this.opts;
    if (this.leaseError) throw this.leaseError;
    await store.appendCommit(commit);
    this.commits.push(commit);
    this.emit({ type: 'commit', commit_id: commit.id, kind: commit.kind, phase });
    await this.writeStatus({ commits: this.commits.map((c) => c.id), state });
    if (phase !== null) await this.writePhase(phase, { state: 'committed', commit_id: commit.id });
    await applyCommitToReleases(this.opts, commit);
  }

  private async publishRouting(commit: DeployCommit, services: ServicePlan[]): Promise<void> {
    await publishCommitRouting(
      this.opts,
      commit,
      this.candidates.filter((c) => services.some((s) => s.service === c.service)),
    );
  }

  private async startCandidates(
    plan: DeployPlan,
    owned: ServicePlan[],
    specs: Map<string, DeployService>,
  ): Promise<void> {
    const work: Array<{ svc: ServicePlan; slot: SlotPlan; spec: DeployService }> = [];
    for (const svc of owned) {
      const spec = specs.get(svc.service);
      for (const slot of svc.slots) {
        if (slot.action !== 'start') continue;
        if (spec === undefined || svc.revision === null) throw new Error(`no spec for ${svc.service}`);
        work.push({ svc, slot, spec });
      }
    }
    const phaseAbort = new AbortController();
    const onAbort = () => phaseAbort.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', onAbort, { once: true });
    const results = await Promise.allSettled(
      work.map(async ({ svc, slot, spec }) => {
        try {
          await this.startOne(plan, svc, slot, spec, phaseAbort.signal);
        } catch (err) {
          phaseAbort.abort(err);
          throw err;
        }
      }),
    );
    this.abort.signal.removeEventListener('abort', onAbort);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // Report the first real failure, not the aborts it caused.
      const real = results.find(
        (r): r is PromiseRejectedResult =>
          r.status === 'rejected' && !(r.reason instanceof Error && r.reason.name === 'AbortError'),
      );
      throw (real ?? failed).reason;
    }
  }

  private async startOne(
    plan: DeployPlan,
    svc: ServicePlan,
    slot: SlotPlan,
    spec: DeployService,
    signal: AbortSignal,
  ): Promise<void> {
    const { store, agent } = this.opts;
    const revision = svc.revision as string;
    const at = this.now();
    let record: InstanceRecord = {
      id: slot.instance,
      namespace: plan.namespace,
      service: svc.service,
      slot: slot.slot,
      machine: slot.machine,
      revision,
      deploy: this.deployId,
      container_id: null,
      ip: null,
      ip6: null,
      ports: { ...spec.ports },
      state: 'starting',
      ready: false,
      draining: false,
      error: null,
      created_at: at,
      updated_at: at,
    };
    this.candidates.push(record);
    await store.putInstance(record);
    this.emit({
      type: 'instance',
      action: 'starting',
      service: svc.service,
      slot: slot.slot,
      machine: slot.machine,
      instance: slot.instance,
      at,
    });
    const started = await agent.start({
      namespace: plan.namespace,
      service: spec,
      revision,
      deploy: this.deployId,
      instance: slot.instance,
      slot: slot.slot,
      machine: slot.machine,
    });
    record = { ...record, container_id: started.container_id, ip: started.ip, updated_at: this.now() };
    this.replaceCandidate(record);
    await store.putInstance(record);
    await agent.waitReady(
      slot.machine,
      { ...started, name: containerName(plan.namespace, svc.service, slot.instance) },
      spec.readiness,
      signal,
    );
    record = { ...record, state: 'running', ready: true, updated_at: this.now() };
    this.replaceCandidate(record);
    await store.putInstance(record);
    this.emit({
      type: 'instance',
      action: 'ready',
      service: svc.service,
      slot: slot.slot,
      machine: slot.machine,
      instance: slot.instance,
      at: this.now(),
    });
  }

  private replaceCandidate(record: InstanceRecord): void {
    this.candidates = this.candidates.map((c) => (c.id === record.id ? record : c));
  }

  private async cleanup(plan: DeployPlan): Promise<void> {
    const { store } = this.opts;
    const instances = new Map((await store.listInstances(plan.namespace)).map((i) => [i.id, i]));
    const stops = plan.services.flatMap((s) => s.stops.map((x) => ({ svc: s, stop: x })));
    const draining: InstanceRecord[] = [];
    for (const { stop } of stops) {
      const rec = instances.get(stop.instance);
      if (rec === undefined) continue;
      const next = { ...rec, draining: true, updated_at: this.now() };
      await store.putInstance(next);
      await store.appendRoutingEvent({
        type: 'instance_upserted',
        instance: next,
        deploy_id: this.deployId,
        at: this.now(),
      });
      this.emit({
        type: 'instance',
        action: 'draining',
        service: rec.service,
        slot: rec.slot,
        machine: rec.machine,
        instance: rec.id,
        at: this.now(),
      });
      draining.push(next);
    }
    if (draining.length === 0) return;
    await this.opts.clock.sleep(this.opts.drainMs ?? 1000);
    const specs = new Map(this.manifest.services.map((s) => [s.name, s]));
    const errors: unknown[] = [];
    await Promise.all(
      draining.map(async (rec) => {
        try {
          await removeInstance(
            this.opts,
            rec,
            specs.get(rec.service)?.stop_grace_ms ?? 10_000,
            this.deployId,
          );
          this.emit({
            type: 'instance',
            action: 'removed',
            service: rec.service,
            slot: rec.slot,
            machine: rec.machine,
            instance: rec.id,
            at: this.now(),
          });
        } catch (err) {
          errors.push(err);
        }
      }),
    );
    if (errors.length > 0) {
      throw new PloyzError(
        'DEPLOY_FAILED_AFTER_CHECKPOINT',
        `the new version is live, but ${errors.length} old instance(s) could not be removed: ${toErrorBody(errors[0]).message}. ` +
          'They are not routed; the next deploy removes them, or remove them with `docker rm -f`.',
        { cause: errors[0] },
      );
    }
  }

  /** Failure: discard uncommitted candidates; status says what is true. */
  private async fail(err: unknown): Promise<ApplyResult> {
    const committedServices = new Set(this.commits.flatMap((c) => c.services.map((s) => s.service)));
    const state: DeployStatusRecord['state'] = this.commits.length === 0 ? 'failed' : 'FailedAfterCheckpoint';
    const discard = this.candidates.filter((c) => !committedServices.has(c.service));
    await Promise.all(
      discard.map(async (rec) => {
        try {
          await this.opts.agent.stop({
            namespace: rec.namespace,
            service: rec.service,
            instance: rec.id,
            machine: rec.machine,
            stop_grace_ms: 0,
          });
          await this.opts.store.deleteInstance(rec);
          this.emit({
            type: 'instance',
            action: 'discarded',
            service: rec.service,
            slot: rec.slot,
            machine: rec.machine,
            instance: rec.id,
            at: this.now(),
          });
        } catch {
          // Left for the next deploy's orphan cleanup; never routed (no release points at it).
        }
      }),
    );
    const body = toErrorBody(err);
    const error = { code: body.code, message: body.message };
    for (const p of this.phases.values()) {
      if (p.state !== 'committed')
        await this.writePhase(p.phase, {
          state: 'failed',
          error: p.state === 'running' ? error : null,
        }).catch(() => {});
    }
    await this.writeStatus({ state, error }).catch(() => {});
    this.emit({ type: 'error', error: body, state });
    const wrapped =
      err instanceof PloyzError
        ? err
        : new PloyzError(
            state === 'failed' ? 'DEPLOY_FAILED' : 'DEPLOY_FAILED_AFTER_CHECKPOINT',
            body.message,
            { cause: err },
          );
    throw withDeploy(wrapped, this.deployId, state);
  }
}

function withDeploy(err: PloyzError, deployId: string, state: string): PloyzError {
  return new PloyzError(err.code, err.message, {
    details: { ...(err.details ?? {}), deploy_id: deployId, state },
    cause: err.cause ?? err,
  });
}

export function containerName(namespace: string, service: string, instance: string): string {
  return `ployz-${namespace}-${service}-${instance}`;
}

function summarise(plan: DeployPlan): string {
  const s = plan.summary;
  return `${s.create} create, ${s.replace} replace, ${s.update} update, ${s.remove} remove, ${s.unchanged} unchanged`;
}

/** Folds a commit into the release records (idempotent; recovery reuses it). */
export async function applyCommitToReleases(
  opts: EngineOptions,
  commit: DeployCommit,
): Promise<ReleaseRecord[]> {
  const releases = releasesOf(commit);
  for (const r of releases) await opts.store.putRelease(r);
  for (const removed of commit.removed_services) await opts.store.deleteRelease(commit.namespace, removed);
  return releases;
}

/** Publishes the routing events a commit implies, in order: revisions, instances, releases. */
export async function publishCommitRouting(
  opts: EngineOptions,
  commit: DeployCommit,
  newInstances: readonly InstanceRecord[],
): Promise<void> {
  const at = opts.clock.now().toISOString();
  const events: RoutingEvent[] = [];
  for (const s of commit.services) {
    const revision = await opts.store.getRevision(commit.namespace, s.service, s.revision);
    if (revision !== null)
      events.push({ type: 'revision_stored', revision, deploy_id: commit.deploy_id, at });
  }
  const stored = new Map((await opts.store.listInstances(commit.namespace)).map((i) => [i.id, i]));
  for (const i of newInstances) {
    const cur = stored.get(i.id) ?? i;
    events.push({ type: 'instance_upserted', instance: cur, deploy_id: commit.deploy_id, at });
  }
  for (const r of releasesOf(commit))
    events.push({ type: 'release_committed', release: r, deploy_id: commit.deploy_id, at });
  for (const removed of commit.removed_services) {
    events.push({
      type: 'release_removed',
      namespace: commit.namespace,
      service: removed,
      deploy_id: commit.deploy_id,
      at,
    });
  }
  for (const e of events) await opts.store.appendRoutingEvent(e);
}

/** Stops and removes one instance (container, record) and publishes its removal. */
export async function removeInstance(
  opts: EngineOptions,
  rec: InstanceRecord,
  graceMs: number,
  deployId: string | null,
): Promise<void> {
  await opts.agent.stop({
    namespace: rec.namespace,
    service: rec.service,
    instance: rec.id,
    machine: rec.machine,
    stop_grace_ms: graceMs,
  });
  await opts.store.deleteInstance(rec);
  await opts.store.appendRoutingEvent({
    type: 'instance_removed',
    instance_id: rec.id,
    deploy_id: deployId,
    at: opts.clock.now().toISOString(),
  });
}
