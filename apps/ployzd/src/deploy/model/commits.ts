/**
 * Commit building and folding. Pure.
 *
 * A checkpoint commit holds the services of its phase; the final commit holds every other
 * service of the manifest (unchanged ones too, so one deploy's commits describe the whole
 * namespace it left behind) and the removed services. Releases are folded from commits.
 */
import { commitId as identityCommitId } from '@ployz/identity';
import type { CommittedService, DeployCommit, Lineage, ReleaseRecord } from '@ployz/types';
import type { DeployPlan, ServicePlan } from './plan.ts';

export function commitId(deployId: string, kind: 'checkpoint' | 'final', phase: string | null): string {
  return kind === 'final'
    ? identityCommitId(deployId, { kind: 'final' })
    : identityCommitId(deployId, { kind: 'checkpoint', phase: phase ?? 'unnamed' });
}

/** `lineage`: a branch's or a promote's; a service that came from a revision there names it. */
export function committedService(plan: ServicePlan, lineage: Lineage | null = null): CommittedService {
  if (plan.revision === null) throw new Error(`commit: service ${plan.service} has no target revision`);
  const from = lineage?.services.find((s) => s.service === plan.service && !s.overridden);
  return {
    service: plan.service,
    revision: plan.revision,
    slots: plan.slots.map((s) => ({ slot: s.slot, machine: s.machine, instance: s.instance })),
    source_revision: from?.from_revision ?? null,
  };
}

export interface CommitContext {
  deployId: string;
  actor: string;
  rollbackOf: string | null;
  /** A branch's or a promote's lineage: on every commit of the deploy. */
  lineage: Lineage | null;
  at: string;
}

/** What every commit of a deploy carries alike; volumes are filled in at the commit (apply/volumes.ts). */
function commitFacts(ctx: CommitContext) {
  return {
    volume_movements: [],
    volumes: [],
    snapshots: [],
    reverted: [],
    rollback_of: ctx.rollbackOf,
    lineage: ctx.lineage,
    actor: ctx.actor,
    created_at: ctx.at,
  } satisfies Partial<DeployCommit>;
}

export function checkpointCommit(plan: DeployPlan, phase: string, ctx: CommitContext): DeployCommit {
  return {
    id: commitId(ctx.deployId, 'checkpoint', phase),
    deploy_id: ctx.deployId,
    namespace: plan.namespace,
    kind: 'checkpoint',
    phase,
    manifest_hash: plan.manifest_hash,
    services: plan.services
      .filter((s) => s.phase === phase && s.revision !== null)
      .map((s) => committedService(s, ctx.lineage)),
    removed_services: [],
    ...commitFacts(ctx),
  };
}

export function finalCommit(
  plan: DeployPlan,
  checkpointed: ReadonlySet<string>,
  ctx: CommitContext,
): DeployCommit {
  return {
    id: commitId(ctx.deployId, 'final', null),
    deploy_id: ctx.deployId,
    namespace: plan.namespace,
    kind: 'final',
    phase: null,
    manifest_hash: plan.manifest_hash,
    services: plan.services
      .filter((s) => s.revision !== null && !checkpointed.has(s.phase))
      .map((s) => committedService(s, ctx.lineage)),
    removed_services: plan.services
      .filter((s) => s.revision === null && s.previous_revision !== null)
      .map((s) => s.service),
    ...commitFacts(ctx),
  };
}

export function releasesOf(commit: DeployCommit): ReleaseRecord[] {
  return commit.services.map((s) => ({
    namespace: commit.namespace,
    service: s.service,
    revision: s.revision,
    deploy: commit.deploy_id,
    slots: s.slots,
    updated_at: commit.created_at,
  }));
}

/** The services a deploy left committed: the union of its commits, later commits winning. */
export function servicesOfDeploy(commits: readonly DeployCommit[], deployId: string): CommittedService[] {
  const out = new Map<string, CommittedService>();
  const own = commits
    .filter((c) => c.deploy_id === deployId)
    .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'final' ? 1 : -1));
  for (const c of own) for (const s of c.services) out.set(s.service, s);
  return [...out.values()].sort((a, b) => (a.service < b.service ? -1 : 1));
}
