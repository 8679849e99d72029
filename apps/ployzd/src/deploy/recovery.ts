/**
 * Crash recovery, run when ployzd starts (before it accepts deploys). A deploy left `planning`,
 * `applying` or `checkpoint_committed` whose lease holder is gone is settled so status tells
 * the truth and routing is never partial:
 * - no commit      → `failed`; its candidates (containers + records) are discarded;
 * - commits exist  → releases and routing events are (re)derived from them (idempotent), stale
 *   instances of the namespace are removed; with the final commit and a clean removal the deploy
 *   is `committed`, otherwise `FailedAfterCheckpoint`.
 * Leases held by an earlier incarnation of this daemon are broken so the next deploy can start.
 */
import { type DeployStatusRecord, type ErrorSummary, isPloyzError } from '@ployz/types';
import { discardCandidates, removeInstance } from './apply/cleanup.ts';
import { foldCommit, releaseRevisionsOf } from './apply/commit.ts';
import { deployLeaseKey, heldByEarlierSelf } from './apply/lease.ts';
import { publishCommitRouting } from './apply/routing.ts';
import type { EngineOptions } from './context.ts';
import { stepName } from './model/events.ts';

export interface RecoveryReport {
  deploy_id: string;
  namespace: string;
  from: DeployStatusRecord['state'];
  to: DeployStatusRecord['state'];
  step: number;
  discarded: number;
  removed: number;
}

const OPEN: ReadonlySet<DeployStatusRecord['state']> = new Set([
  'planning',
  'applying',
  'checkpoint_committed',
]);

export async function recoverDeploys(opts: EngineOptions): Promise<RecoveryReport[]> {
  const { store } = opts;
  const now = opts.clock.now();
  const reports: RecoveryReport[] = [];

  for (const read of await store.listStatuses()) {
    const status = read.value;
    if (!OPEN.has(status.state)) continue;
    const lease = await store.getLease(deployLeaseKey(status.namespace));
    const holderAlive =
      lease !== null &&
      Date.parse(lease.expires_at) > now.getTime() &&
      !heldByEarlierSelf(opts, lease.owner) &&
      lease.purpose === `deploy ${status.deploy_id}`;
    if (holderAlive) continue; // another daemon is still applying it

    const commits = (await store.listCommits(status.namespace)).filter(
      (c) => c.deploy_id === status.deploy_id,
    );
    const instances = (await store.listInstances(status.namespace)).map((i) => i.value);
    const why = `ployzd stopped during step ${status.step} (${stepName(status.step)})`;
    let discarded = 0;
    let removed = 0;
    let next: DeployStatusRecord['state'];
    let error: ErrorSummary;

    if (commits.length === 0) {
      discarded += (
        await discardCandidates(
          opts,
          instances.filter((i) => i.deploy === status.deploy_id),
        )
      ).length;
      next = 'failed';
      error = { code: 'DEPLOY_FAILED', message: `${why}; nothing was committed and nothing live changed` };
    } else {
      const ordered = [...commits].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'final' ? 1 : -1));
      const revisions = releaseRevisionsOf(await store.listReleases(status.namespace));
      for (const c of ordered) {
        await foldCommit(opts, c, revisions);
        const ids = new Set(c.services.flatMap((s) => s.slots.map((x) => x.instance)));
        await publishCommitRouting(
          opts,
          c,
          instances.filter((i) => ids.has(i.id)),
        );
      }
      const hasFinal = commits.some((c) => c.kind === 'final');
      let cleanupFailed = !hasFinal;
      if (hasFinal) {
        const releases = await store.listReleases(status.namespace);
        const referenced = new Set(releases.flatMap((r) => r.value.slots.map((s) => s.instance)));
        for (const rec of instances.filter((i) => !referenced.has(i.id))) {
          try {
            await removeInstance(opts, rec, 0, status.deploy_id);
            removed++;
          } catch {
            cleanupFailed = true;
          }
        }
      } else {
        // Candidates of phases after the last checkpoint were never committed: discard them.
        const committed = new Set(
          commits.flatMap((c) => c.services.flatMap((s) => s.slots.map((x) => x.instance))),
        );
        discarded += (
          await discardCandidates(
            opts,
            instances.filter((i) => i.deploy === status.deploy_id && !committed.has(i.id)),
          )
        ).length;
      }
      next = cleanupFailed ? 'FailedAfterCheckpoint' : 'committed';
      error = {
        code: 'DEPLOY_FAILED_AFTER_CHECKPOINT',
        message: hasFinal
          ? `${why}; the final commit is live, routing was re-derived and old instances ${cleanupFailed ? 'could not all be removed' : 'were removed on restart'}`
          : `${why}; checkpointed facts are live, later phases were discarded`,
      };
    }

    try {
      await store.putStatus(
        {
          ...status,
          state: next,
          commits: commits.map((c) => c.id),
          error: next === 'committed' ? null : error,
          updated_at: opts.clock.now().toISOString(),
        },
        read.revision,
      );
    } catch (err) {
      // Written since it was read: its holder is alive after all; that writer settles it.
      if (isPloyzError(err, 'STORE_CONFLICT')) continue;
      throw err;
    }
    const final = commits.find((c) => c.kind === 'final');
    for (const { value: p, revision } of await store.listPhases(status.deploy_id)) {
      const at = opts.clock.now().toISOString();
      if (final !== undefined && p.commit_policy === 'end_of_deploy' && p.state !== 'committed') {
        await store.putPhase({ ...p, state: 'committed', commit_id: final.id, updated_at: at }, revision);
      } else if (p.state === 'pending' || p.state === 'running' || p.state === 'done') {
        await store.putPhase(
          { ...p, state: 'failed', error: { code: error.code, message: why }, updated_at: at },
          revision,
        );
      }
    }
    reports.push({
      deploy_id: status.deploy_id,
      namespace: status.namespace,
      from: status.state,
      to: next,
      step: status.step,
      discarded,
      removed,
    });
  }

  // Leases of an earlier incarnation of this daemon (e.g. killed at step 2 or 3, before any status).
  for (const lease of await store.listLeases()) {
    if (heldByEarlierSelf(opts, lease.owner)) await store.breakLease(lease).catch(() => {});
  }
  return reports;
}
