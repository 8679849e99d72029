/**
 * Branches and promotes (`ployzctl branch preview|apply|promote`, docs/operations.md "Branches"):
 * the committed state of the namespaces involved read from the store, the decision made by
 * model/branch.ts, and the result deployed like any deploy (lease, probe, applying, phases,
 * commit with lineage, routing events, cleanup) by the apply's own steps, with the data work of
 * apply/derived.ts before the candidates start. Reads only; the Apply writes.
 */
import type { BranchPlanView } from '@ployz/protocol';
import {
  type DeployCommit,
  type Lineage,
  type Manifest,
  PloyzError,
  type VolumeRecord,
  type VolumeSpec,
} from '@ployz/types';
import { Apply } from './apply/apply.ts';
import { type DerivedDeploy, planData, withDataLines } from './apply/derived.ts';
import { planImages } from './apply/images.ts';
import { previewPlan } from './apply/preview.ts';
import type { ApplyResult } from './apply/run.ts';
import { planVolumes } from './apply/volume-plan.ts';
import type { EngineOptions } from './context.ts';
import { type CommittedSpec, type Decision, planBranch, planPromote } from './model/branch.ts';
import type { EmitDeployEvent } from './model/events.ts';
import type { DeployManifest } from './model/spec.ts';

export interface BranchOptions {
  source: string;
  destination: string;
  volumes: Readonly<Record<string, string>>;
  hostSuffix: string | null;
  /** The branch manifest (`-f`), parsed; null: none. */
  override: Manifest | null;
}

export interface PromoteOptions {
  branch: string;
  source: string;
  withData: boolean;
}

export interface RunOptions {
  actor: string;
  startConcurrency?: number;
}

/** A namespace's committed services (releases with their revisions' specs) and volume declarations. */
export async function committedState(
  engine: EngineOptions,
  namespace: string,
): Promise<{ services: CommittedSpec[]; volumes: VolumeSpec[]; commits: DeployCommit[] }> {
  const [releases, commits] = await Promise.all([
    engine.store.listReleases(namespace),
    engine.store.listCommits(namespace),
  ]);
  const deploys = new Set(releases.map((r) => r.value.deploy));
  // The declarations the releases' deploys committed, later commits winning.
  const ordered = [...commits].sort((a, b) =>
    a.deploy_id < b.deploy_id ? -1 : a.deploy_id > b.deploy_id ? 1 : 0,
  );
  const volumes = [
    ...new Map(
      ordered
        .filter((c) => deploys.has(c.deploy_id))
        .flatMap((c) => c.volumes.map((v) => [v.name, v] as const)),
    ).values(),
  ];
  const services: CommittedSpec[] = [];
  for (const { value: release } of releases) {
    const revision = await engine.store.getRevision(namespace, release.service, release.revision);
    if (revision === null) {
      throw new PloyzError(
        'STORE_CORRUPT',
        `revision ${release.revision} of ${namespace}/${release.service} (its committed release) is not stored`,
        { details: { namespace, service: release.service, revision: release.revision } },
      );
    }
    services.push({
      spec: engine.codec.fromRecord(revision, volumes).source,
      revision: release.revision,
      deploy: release.deploy,
      slots: release.slots,
    });
  }
  return { services, volumes, commits };
}

async function recordsOf(engine: EngineOptions, namespace: string): Promise<VolumeRecord[]> {
  return (await engine.volumes?.listRecords(namespace))?.map((r) => r.value) ?? [];
}

/** BRANCH_DESTINATION_EXISTS unless nothing of `destination` is stored: no release, instance or volume. */
export async function assertDestinationFree(
  engine: EngineOptions,
  source: string,
  destination: string,
): Promise<void> {
  if (source === destination) {
    throw new PloyzError(
      'BRANCH_DESTINATION_EXISTS',
      `a branch of ${source} needs a new namespace, not ${source} itself`,
      { details: { namespace: destination } },
    );
  }
  const [releases, instances, volumes] = await Promise.all([
    engine.store.listReleases(destination),
    engine.store.listInstances(destination),
    recordsOf(engine, destination),
  ]);
  if (releases.length + instances.length > 0) {
    throw new PloyzError(
      'BRANCH_DESTINATION_EXISTS',
      `namespace ${destination} exists (${releases.length} service(s), ${instances.length} instance(s)); branch into a new name, or ployzctl namespace rm ${destination} first`,
      { details: { namespace: destination, services: releases.length, instances: instances.length } },
    );
  }
  if (volumes.length > 0) {
    throw new PloyzError(
      'BRANCH_DESTINATION_EXISTS',
      `namespace ${destination} has volumes left from before (${volumes.map((v) => v.name).join(', ')}; ployzctl volume ls -n ${destination}); a branch never adopts data it did not clone: branch into a new name`,
      { details: { namespace: destination, volumes: volumes.map((v) => v.name) } },
    );
  }
}

/** The newest lineage a namespace's commits recorded of `kind`, or null. */
export function newestLineage(commits: readonly DeployCommit[], kind: Lineage['kind']): Lineage | null {
  const found = commits
    .filter((c) => c.lineage?.kind === kind)
    .sort((a, b) => (a.deploy_id < b.deploy_id ? 1 : a.deploy_id > b.deploy_id ? -1 : 0))[0];
  return found?.lineage ?? null;
}

export async function branchDecision(engine: EngineOptions, o: BranchOptions): Promise<Decision> {
  const [source, records] = await Promise.all([
    committedState(engine, o.source),
    recordsOf(engine, o.source),
  ]);
  const decision = planBranch({
    source: o.source,
    destination: o.destination,
    services: source.services,
    volumes: source.volumes,
    records,
    override: o.override,
    volumeModes: o.volumes,
    hostSuffix: o.hostSuffix,
  });
  await assertDestinationFree(engine, o.source, o.destination);
  return decision;
}

export async function promoteDecision(engine: EngineOptions, o: PromoteOptions): Promise<Decision> {
  const [branch, source, branchRecords, sourceRecords] = await Promise.all([
    committedState(engine, o.branch),
    committedState(engine, o.source),
    recordsOf(engine, o.branch),
    recordsOf(engine, o.source),
  ]);
  return planPromote({
    branch: o.branch,
    source: o.source,
    branchServices: branch.services,
    branchVolumes: branch.volumes,
    branchRecords,
    branchLineage: newestLineage(branch.commits, 'branch'),
    sourceServices: source.services,
    sourceVolumes: source.volumes,
    sourceRecords,
    withData: o.withData,
  });
}

function manifestOf(engine: EngineOptions, decision: Decision): DeployManifest {
  return { ...engine.codec.manifestOf(decision.manifest), place_like: decision.placeLike };
}

function derivedOf(decision: Decision, check?: () => Promise<void>): DerivedDeploy {
  return { lineage: decision.lineage, volumes: decision.volumes, ...(check ? { check } : {}) };
}

/** What a branch or promote would do, as the apply's step 1 would plan it; nothing changes. */
async function previewDecision(engine: EngineOptions, decision: Decision): Promise<BranchPlanView> {
  const manifest = manifestOf(engine, decision);
  const { plan } = await previewPlan(engine, manifest);
  const data = planData(engine, manifest, plan, derivedOf(decision));
  const volumed = await planVolumes(engine, manifest, data.plan, null, false);
  const specs = new Map(manifest.services.map((s) => [s.name, s]));
  const planned = await planImages(engine, withDataLines(volumed.plan, data), specs);
  return { plan: planned, routes: decision.routes };
}

export async function previewBranch(engine: EngineOptions, o: BranchOptions): Promise<BranchPlanView> {
  return previewDecision(engine, await branchDecision(engine, o));
}

export async function previewPromote(engine: EngineOptions, o: PromoteOptions): Promise<BranchPlanView> {
  return previewDecision(engine, await promoteDecision(engine, o));
}

/** The branch as a deploy of the new namespace; its destination is checked again under the lease. */
export async function applyBranch(
  engine: EngineOptions,
  o: BranchOptions,
  run: RunOptions,
  emit: EmitDeployEvent,
): Promise<ApplyResult> {
  const decision = await branchDecision(engine, o);
  const derived = derivedOf(decision, () => assertDestinationFree(engine, o.source, o.destination));
  return new Apply(
    engine,
    manifestOf(engine, decision),
    { actor: run.actor, rollbackOf: null, derived, ...startConcurrency(run) },
    emit,
  ).run();
}

/** The promote as a deploy of the source namespace (never read as a rollback: its lineage says what it is). */
export async function applyPromote(
  engine: EngineOptions,
  o: PromoteOptions,
  run: RunOptions,
  emit: EmitDeployEvent,
): Promise<ApplyResult> {
  const decision = await promoteDecision(engine, o);
  return new Apply(
    engine,
    manifestOf(engine, decision),
    { actor: run.actor, rollbackOf: null, derived: derivedOf(decision), ...startConcurrency(run) },
    emit,
  ).run();
}

function startConcurrency(run: RunOptions): { startConcurrency?: number } {
  return run.startConcurrency === undefined ? {} : { startConcurrency: run.startConcurrency };
}
