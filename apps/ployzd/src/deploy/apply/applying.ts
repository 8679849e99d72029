/**
 * Step 4, the first durable writes: `applying` status, a `pending` record per phase, and the
 * content-addressed revisions of the services that change (env sealed by the codec).
 */

import type { DeployPlan } from '../model/plan.ts';
import { applyingStatus, pendingPhases } from '../model/records.ts';
import type { DeployRun } from './run.ts';

export async function writeApplying(run: DeployRun, plan: DeployPlan): Promise<void> {
  const { store, codec } = run.engine;
  const at = run.now();
  const status = applyingStatus(
    plan,
    { deployId: run.deployId, actor: run.request.actor, rollbackOf: run.request.rollbackOf ?? null },
    at,
  );
  run.emit({
    type: 'deploy',
    deploy_id: run.deployId,
    namespace: plan.namespace,
    rollback_of: status.rollback_of,
  });
  await run.enter(4);
  // The status first (the deploy exists), then the phases and revisions: independent keys, all at once.
  await run.createStatus(status);
  await Promise.all([
    ...pendingPhases(plan, run.deployId, at).map((record) => run.createPhase(record)),
    ...plan.services.map(async (s) => {
      // A revision the release already points at was stored before that release was committed
      // (revisions are content-addressed and never deleted): only new ones are sealed and put.
      if (s.revision === null || s.revision === s.previous_revision) return;
      const spec = run.specs.get(s.service);
      if (spec !== undefined) await store.putRevision(codec.toRecord(plan.namespace, spec, at));
    }),
  ]);
  run.step(4, 'done', { detail: `deploy ${run.deployId}` });
}
