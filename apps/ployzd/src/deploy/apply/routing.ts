/**
 * Step 8 (and the routing of each checkpoint): publish the events a commit implies, in order,
 * each after the KV records it names are written. Idempotent; recovery re-publishes with it.
 */
import type { DeployCommit, InstanceRecord, RevisionRecord } from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import { commitRoutingEvents } from '../model/routing.ts';

/** `newInstances` are the commit's candidates; each is published as stored now. */
export async function publishCommitRouting(
  engine: EngineOptions,
  commit: DeployCommit,
  newInstances: readonly InstanceRecord[],
): Promise<void> {
  const { store } = engine;
  const at = engine.clock.now().toISOString();
  // One read per record the events carry, all at once (never a listing of the whole namespace).
  const [revisions, instances] = await Promise.all([
    Promise.all(commit.services.map((s) => store.getRevision(commit.namespace, s.service, s.revision))),
    Promise.all(
      newInstances.map(async (i) => (await store.getInstance(i.namespace, i.service, i.id))?.value ?? i),
    ),
  ]);
  await store.appendRoutingEvents(
    commitRoutingEvents(
      commit,
      revisions.filter((r): r is RevisionRecord => r !== null),
      instances,
      at,
    ),
  );
}
