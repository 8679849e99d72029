/**
 * Steps 6 and 7: append a commit (create-only, dedup by id), record it in status and its
 * phases, and fold it into the release records. After the first append a failure is
 * `FailedAfterCheckpoint`: committed facts stay durable and live.
 *
 * Route ownership is checked again at each commit under the installation-wide routes lease
 * (`cp.lock.routes`, held for the append and the fold only): two namespaces deploying the same
 * free hostname at once each pass the planning check under their own namespace lease, and the
 * second to commit now gets HOSTNAME_OWNED instead of a shared route.
 */
import { keys } from '@ployz/store';
import { type DeployCommit, type DeployStatusRecord, isPloyzError, type ReleaseRecord } from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import { releasesOf } from '../model/commits.ts';
import { assertRoutesFree } from '../model/ownership.ts';
import type { HeldLease, Versioned } from '../ports.ts';
import { leaseOwner } from './lease.ts';
import { otherNamespacesClaims } from './preview.ts';
import type { DeployRun } from './run.ts';

export async function appendCommit(
  run: DeployRun,
  commit: DeployCommit,
  phase: string | null,
  state: DeployStatusRecord['state'],
): Promise<void> {
  run.assertLease();
  const routes = await acquireRoutesLease(run);
  try {
    const stored = await run.engine.store.listReleases();
    assertRoutesFree(
      run.manifest,
      await otherNamespacesClaims(
        run.engine,
        run.manifest.namespace,
        stored.map((r) => r.value),
      ),
    );
    await run.engine.store.appendCommit(commit);
    run.commits.push(commit);
    run.emit({ type: 'commit', commit_id: commit.id, kind: commit.kind, phase });
    await run.writeStatus({ commits: run.commits.map((c) => c.id), state });
    if (phase !== null) await run.writePhase(phase, { state: 'committed', commit_id: commit.id });
    await foldCommit(run.engine, commit, run.releaseRevisions);
  } finally {
    await routes.release().catch(() => {});
  }
}

/** The routes lease lives only around one commit: its TTL bounds a crashed holder. */
const ROUTES_LEASE_TTL_MS = 10_000;
/** How long a commit waits for another namespace's commit to finish with the routes lease. */
const ROUTES_LEASE_WAIT_MS = 20_000;

async function acquireRoutesLease(run: DeployRun): Promise<HeldLease> {
  const { engine } = run;
  const deadline = engine.clock.now().getTime() + ROUTES_LEASE_WAIT_MS;
  for (let wait = 20; ; wait = Math.min(wait * 2, 250)) {
    try {
      return await engine.store.acquireLease(
        keys.routesLock(),
        leaseOwner(engine),
        ROUTES_LEASE_TTL_MS,
        `commit of deploy ${run.deployId} (${run.manifest.namespace})`,
      );
    } catch (error) {
      const held = isPloyzError(error) && error.code === 'DEPLOY_LOCK_HELD';
      if (!held || engine.clock.now().getTime() >= deadline) throw error;
      await engine.clock.sleep(wait, run.abort.signal);
    }
  }
}

/**
 * Folds a commit into the release records (idempotent; recovery reuses it), each write
 * compare-and-set at the revision in `revisions` (service → store revision of the namespace's
 * release as read; absent: no release yet). `revisions` follows the writes.
 */
export async function foldCommit(
  engine: EngineOptions,
  commit: DeployCommit,
  revisions: Map<string, number>,
): Promise<ReleaseRecord[]> {
  const releases = releasesOf(commit);
  // One compare-and-set per service, each on its own key: all at once.
  await Promise.all([
    ...releases.map(async (r) => {
      revisions.set(r.service, await engine.store.putRelease(r, revisions.get(r.service) ?? null));
    }),
    ...commit.removed_services.map(async (removed) => {
      const revision = revisions.get(removed);
      if (revision === undefined) return;
      await engine.store.deleteRelease(commit.namespace, removed, revision);
      revisions.delete(removed);
    }),
  ]);
  return releases;
}

/** The revisions `foldCommit` starts from: the namespace's releases as stored now. */
export function releaseRevisionsOf(releases: readonly Versioned<ReleaseRecord>[]): Map<string, number> {
  return new Map(releases.map((r) => [r.value.service, r.revision]));
}
