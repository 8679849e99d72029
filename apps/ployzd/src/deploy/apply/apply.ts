/**
 * The apply façade: the nine steps of DESIGN.md §5 in order, each a small unit of this folder
 * over one DeployRun. Decisions are the pure planner's and commit builders' (model/); the
 * units sequence I/O and keep status truthful.
 *
 * Failure before the first commit → `failed`, candidates removed, nothing live changed.
 * Failure after a commit → `FailedAfterCheckpoint`: committed facts stay durable and live.
 */
import type { DeployCommit } from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import { checkpointCommit, finalCommit } from '../model/commits.ts';
import type { EmitDeployEvent } from '../model/events.ts';
import type { DeployPlan } from '../model/plan.ts';
import type { DeployManifest } from '../model/spec.ts';
import { writeApplying } from './applying.ts';
import { startCandidates } from './candidates.ts';
import { drainAndRemove } from './cleanup.ts';
import { appendCommit, releaseRevisionsOf } from './commit.ts';
import { type DataPlanning, planData, withDataLines } from './derived.ts';
import { failRun } from './failure.ts';
import { planImages, sendImages } from './images.ts';
import { acquireDeployLease } from './lease.ts';
import { type Preview, previewPlan, summarise } from './preview.ts';
import { probeMachines } from './probe.ts';
import { publishCommitRouting } from './routing.ts';
import { type ApplyOptions, type ApplyResult, DeployRun } from './run.ts';
import { planVolumes } from './volume-plan.ts';
import { retireVolumes, withRemovalVolumes } from './volume-retire.ts';
import { RunVolumes } from './volumes.ts';

export class Apply {
  readonly #deploy: DeployRun;
  readonly #volumes: RunVolumes;

  constructor(engine: EngineOptions, manifest: DeployManifest, request: ApplyOptions, emit: EmitDeployEvent) {
    this.#deploy = new DeployRun(engine, manifest, request, emit);
    this.#volumes = new RunVolumes(this.#deploy);
  }

  async run(): Promise<ApplyResult> {
    const run = this.#deploy;
    // ---- 1. preview
    await run.enter(1);
    const first = await previewPlan(run.engine, run.manifest);
    const firstData = this.#planData(first.plan);
    const { plan: volumedFirst } = await planVolumes(
      run.engine,
      run.manifest,
      firstData?.plan ?? first.plan,
      run.request.rollbackOf ?? null,
      run.request.withoutVolumeRevert === true,
    );
    const shown = await this.#withRemoval(
      firstData === null ? volumedFirst : withDataLines(volumedFirst, firstData),
    );
    run.emit({ type: 'plan', plan: shown });
    if (!shown.changed && !run.request.force) {
      run.step(1, 'done', { detail: 'no changes' });
      return this.result({ noop: true, plan: shown, status: null });
    }
    run.step(1, 'done', { detail: summarise(shown) });

    // ---- 2. lease
    await run.enter(2);
    const lease = await acquireDeployLease(run);
    run.step(2, 'done', { detail: `${lease.held.record.key} held until ${lease.held.record.expires_at}` });
    try {
      return await this.underLease(first);
    } finally {
      await lease.release();
    }
  }

  private async underLease(first: Preview): Promise<ApplyResult> {
    const run = this.#deploy;
    // ---- 3. probe, re-plan against fresh state now that the lease is ours, send missing images
    await run.enter(3);
    await probeMachines(run, first.machines);
    await run.request.derived?.check?.();
    const fresh = await previewPlan(run.engine, run.manifest, run.capacity);
    for (const [service, revision] of releaseRevisionsOf(fresh.releases))
      run.releaseRevisions.set(service, revision);
    // A rollback's reverts are planned (and refused) before anything changes; the services whose
    // data reverts get new instances even when their revision is the same. So are a branch's
    // clones and a promote's replaced volumes.
    await this.#volumes.check(fresh.plan);
    const data = this.#planData(fresh.plan);
    run.lineage = data?.lineage ?? null;
    const volumed = await planVolumes(
      run.engine,
      run.manifest,
      data?.plan ?? fresh.plan,
      run.request.rollbackOf ?? null,
      run.request.withoutVolumeRevert === true,
    );
    const { reverts } = volumed;
    // The machines that lack an image get it from this one now, before anything is written.
    const plan = await this.#withRemoval(
      await planImages(
        run.engine,
        data === null ? volumed.plan : withDataLines(volumed.plan, data),
        run.specs,
      ),
    );
    run.emit({ type: 'plan', plan });
    const sent = await sendImages(run, plan);
    run.step(3, 'done', {
      detail: `${run.capacity.size}/${first.machines.length} machine(s) available${sent > 0 ? `, ${sent} image(s) sent` : ''}`,
    });

    // ---- 4. applying status + pending phases: the first durable writes
    await writeApplying(run, plan);

    try {
      await this.#volumes.revert(reverts);
      await this.#volumes.bring(data?.work ?? []);
      const checkpointed = await this.phases(plan);
      await this.finalCommit(plan, checkpointed);
    } catch (err) {
      // Before the final commit: reverted volumes get their pre-rollback data back (their writers,
      // the candidates included, stopped first) and the old writers start again; then the
      // candidates are discarded and the failure reported.
      for (const problem of await this.#volumes.undo())
        run.emit({ type: 'warning', message: `could not restore after the failure: ${problem}` });
      return await failRun(run, err);
    }

    // ---- 9. cleanup: failure here leaves the deploy live (FailedAfterCheckpoint).
    try {
      await run.enter(9);
      await drainAndRemove(run, plan);
      const agent = run.engine.volumes;
      if (run.request.removal?.deleteVolumes === true && agent !== undefined) {
        const { retired, kept } = await retireVolumes(
          agent,
          await agent.listRecords(run.manifest.namespace),
          run.deployId,
          run.emit,
        );
        run.step(9, 'done', {
          detail: `${retired.length} volume(s) deleted, ${kept.length} kept after a failure`,
        });
      } else run.step(9, 'done');
      await run.writeStatus({ state: 'committed', step: 9 });
    } catch (err) {
      return await failRun(run, err);
    }
    return this.result({ noop: false, plan, status: run.status });
  }

  /** Steps 5 and 6: each phase's candidates, then its checkpoint commit. Returns the checkpointed phases. */
  private async phases(plan: DeployPlan): Promise<Set<string>> {
    const run = this.#deploy;
    const checkpointed = new Set<string>();
    for (const phase of plan.phases) {
      await run.enter(5, { phase: phase.id });
      await run.writePhase(phase.id, { state: 'running' });
      const owned = plan.services.filter((s) => s.phase === phase.id);
      await this.#volumes.stopOldWriters(
        plan,
        owned.map((s) => s.service),
      );
      await startCandidates(run, owned);
      await run.writePhase(phase.id, { state: 'done' });
      run.step(5, 'done', { phase: phase.id, detail: `${phase.starts} candidate(s) ready` });
      if (phase.commit_policy === 'checkpoint') {
        await run.enter(6, { phase: phase.id });
        const services = owned.filter((s) => s.revision !== null).map((s) => s.service);
        const commit = await this.#volumes.withSnapshots(
          checkpointCommit(plan, phase.id, run.commitContext()),
          plan,
          services,
        );
        await appendCommit(run, commit, phase.id, 'checkpoint_committed');
        await this.#volumes.record(commit, plan, services);
        await this.publish(
          commit,
          owned.map((s) => s.service),
        );
        checkpointed.add(phase.id);
        run.step(6, 'done', { phase: phase.id, detail: commit.id });
      }
    }
    if (checkpointed.size === 0) run.step(6, 'skipped', { detail: 'no checkpoint phases' });
    return checkpointed;
  }

  /** Steps 7 and 8: the final commit (the point of no return), then its routing events. */
  private async finalCommit(plan: DeployPlan, checkpointed: ReadonlySet<string>): Promise<void> {
    const run = this.#deploy;
    await run.enter(7);
    const covered = plan.services
      .filter((s) => s.revision !== null && !checkpointed.has(s.phase))
      .map((s) => s.service);
    const final = await this.#volumes.withSnapshots(
      finalCommit(plan, checkpointed, run.commitContext()),
      plan,
      covered,
    );
    await appendCommit(run, final, null, 'applying');
    await this.#volumes.record(final, plan, covered);
    for (const phase of plan.phases) {
      if (!checkpointed.has(phase.id))
        await run.writePhase(phase.id, { state: 'committed', commit_id: final.id });
    }
    run.step(7, 'done', { detail: final.id });

    await run.enter(8);
    await this.publish(
      final,
      plan.services.filter((s) => !checkpointed.has(s.phase)).map((s) => s.service),
    );
    run.step(8, 'done');
  }

  /** A removal's plan shows what becomes of the namespace's volumes (volume-retire.ts). */
  async #withRemoval(plan: DeployPlan): Promise<DeployPlan> {
    const run = this.#deploy;
    const removal = run.request.removal;
    const agent = run.engine.volumes;
    if (removal === undefined || agent === undefined) return plan;
    const records = (await agent.listRecords(run.manifest.namespace)).map((r) => r.value);
    return withRemovalVolumes(plan, records, removal.deleteVolumes, run.deployId);
  }

  #planData(plan: DeployPlan): DataPlanning | null {
    const run = this.#deploy;
    const derived = run.request.derived;
    return derived === undefined ? null : planData(run.engine, run.manifest, plan, derived);
  }

  private publish(commit: DeployCommit, services: readonly string[]): Promise<void> {
    const mine = [...this.#deploy.candidates.values()].filter((c) => services.includes(c.service));
    return publishCommitRouting(this.#deploy.engine, commit, mine);
  }

  private result(result: ApplyResult): ApplyResult {
    this.#deploy.emit({ type: 'result', ...result });
    return result;
  }
}
