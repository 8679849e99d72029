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
import type { DeployStatusRecord, InstanceRecord } from '@ployz/types';
import { applyCommitToReleases, publishCommitRouting, removeInstance } from './apply.ts';
import { type EngineOptions, leaseKey, leaseOwner } from './context.ts';
import { stepName } from './events.ts';

type ErrorSummary = { code: string; message: string };

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

function ownedByEarlierSelf(opts: EngineOptions, owner: string): boolean {
  const prefix = `ployzd:${opts.machineId}:`;
  return owner.startsWith(prefix) && owner !== leaseOwner(opts);
}

/**
 * Stops and forgets candidates that no commit made live. One that cannot be stopped stays as an
 * orphan: it was never routed, and the next deploy's plan removes it. Returns how many went.
 */
async function discardCandidates(opts: EngineOptions, candidates: InstanceRecord[]): Promise<number> {
  let discarded = 0;
  for (const rec of candidates) {
    try {
      await opts.agent.stop({
        namespace: rec.namespace,
        service: rec.service,
        instance: rec.id,
        machine: rec.machine,
        stop_grace_ms: 0,
      });
      await opts.store.deleteInstance(rec);
      discarded++;
    } catch {
      // orphan (never routed); the next deploy removes it
    }
  }
  return discarded;
}

export async function recoverDeploys(opts: EngineOptions): Promise<RecoveryReport[]> {
  const { store } = opts;
  const now = opts.clock.now();
  const reports: RecoveryReport[] = [];

  for (const status of await store.listStatuses()) {
    if (!OPEN.has(status.state)) continue;
    const lease = await store.getLease(leaseKey(status.namespace));
    const holderAlive =
      lease !== null &&
      Date.parse(lease.expires_at) > now.getTime() &&
      !ownedByEarlierSelf(opts, lease.owner) &&
      lease.purpose === `deploy ${status.deploy_id}`;
    if (holderAlive) continue; // another daemon is still applying it

    const commits = (await store.listCommits(status.namespace)).filter(
      (c) => c.deploy_id === status.deploy_id,
    );
    const instances = await store.listInstances(status.namespace);
    const why = `ployzd stopped during step ${status.step} (${stepName(status.step)})`;
    let discarded = 0;
    let removed = 0;
    let next: DeployStatusRecord['state'];
    let error: ErrorSummary;

    if (commits.length === 0) {
      discarded += await discardCandidates(
        opts,
        instances.filter((i) => i.deploy === status.deploy_id),
      );
      next = 'failed';
      error = { code: 'DEPLOY_FAILED', message: `${why}; nothing was committed and nothing live changed` };
    } else {
      const ordered = [...commits].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'final' ? 1 : -1));
      for (const c of ordered) {
        await applyCommitToReleases(opts, c);
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
        const referenced = new Set(releases.flatMap((r) => r.slots.map((s) => s.instance)));
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
        discarded += await discardCandidates(
          opts,
          instances.filter((i) => i.deploy === status.deploy_id && !committed.has(i.id)),
        );
      }
      next = cleanupFailed ? 'FailedAfterCheckpoint' : 'committed';
      error = {
        code: 'DEPLOY_FAILED_AFTER_CHECKPOINT',
        message: hasFinal
          ? `${why}; the final commit is live, routing was re-derived and old instances ${cleanupFailed ? 'could not all be removed' : 'were removed on restart'}`
          : `${why}; checkpointed facts are live, later phases were discarded`,
      };
    }

    await store.putStatus({
      ...status,
      state: next,
      commits: commits.map((c) => c.id),
      error: next === 'committed' ? null : error,
      updated_at: opts.clock.now().toISOString(),
    });
    const final = commits.find((c) => c.kind === 'final');
    for (const p of await store.listPhases(status.deploy_id)) {
      if (final !== undefined && p.commit_policy === 'end_of_deploy' && p.state !== 'committed') {
        await store.putPhase({
          ...p,
          state: 'committed',
          commit_id: final.id,
          updated_at: opts.clock.now().toISOString(),
        });
      } else if (p.state === 'pending' || p.state === 'running' || p.state === 'done') {
        await store.putPhase({
          ...p,
          state: 'failed',
          error: { code: error.code, message: why },
          updated_at: opts.clock.now().toISOString(),
        });
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
    if (ownedByEarlierSelf(opts, lease.owner)) await store.breakLease(lease).catch(() => {});
  }
  return reports;
}
