/**
 * Step 9: drain and remove the old instances the plan stops. Each is marked draining (an
 * event, so the gateway stops picking it), then after the drain time stopped with its grace
 * and removed. A failure here leaves the deploy live and says so (FailedAfterCheckpoint).
 *
 * An old instance on a machine that did not answer the probe (step 3) is marked draining — so no
 * gateway that hears of it routes to it — but not waited for: that machine is cut off or down, and
 * a stop sent to it would only time out. The deploy says so (a warning) and succeeds; the first
 * deploy of the namespace that reaches the machine again removes the instance.
 */
import { type InstanceRecord, isPloyzError, PloyzError, toErrorBody } from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import { instanceEvent } from '../model/events.ts';
import type { DeployPlan } from '../model/plan.ts';
import { instanceRemoved, instanceUpserted } from '../model/routing.ts';
import type { Versioned } from '../ports.ts';
import type { DeployRun } from './run.ts';

export const DEFAULT_DRAIN_MS = 1000;
const DEFAULT_STOP_GRACE_MS = 10_000;
const DRAIN_MARK_ATTEMPTS = 5;

export async function drainAndRemove(run: DeployRun, plan: DeployPlan): Promise<void> {
  const { store } = run.engine;
  const reads = (
    await Promise.all(
      plan.services.flatMap((s) =>
        s.stops.map((stop) => store.getInstance(plan.namespace, s.service, stop.instance)),
      ),
    )
  ).filter((read): read is Versioned<InstanceRecord> => read !== null);
  // Each mark is its own compare-and-set: all at once, then their events (each after its write).
  const marked = await Promise.allSettled(reads.map((read) => markDraining(run, read)));
  const draining = marked.flatMap((m) => (m.status === 'fulfilled' && m.value !== null ? [m.value] : []));
  await store.appendRoutingEvents(draining.map((next) => instanceUpserted(next, run.deployId, run.now())));
  for (const next of draining) run.emit(instanceEvent('draining', next, run.now()));
  const failed = marked.find((m): m is PromiseRejectedResult => m.status === 'rejected');
  if (failed) throw failed.reason;
  if (draining.length === 0) return;
  await run.engine.clock.sleep(run.engine.drainMs ?? DEFAULT_DRAIN_MS);
  const errors: unknown[] = [];
  const reachable: InstanceRecord[] = [];
  for (const rec of draining) {
    if (!run.unavailable.has(rec.machine)) {
      reachable.push(rec);
      continue;
    }
    run.emit({
      type: 'warning',
      message:
        `old instance ${rec.id} on ${rec.machine} left for later: ${rec.machine} did not answer the probe. ` +
        `It is not routed; the next deploy that reaches ${rec.machine} removes it.`,
    });
  }
  await Promise.all(
    reachable.map(async (rec) => {
      try {
        const grace = run.specs.get(rec.service)?.stop_grace_ms ?? DEFAULT_STOP_GRACE_MS;
        await removeInstance(run.engine, rec, grace, run.deployId);
        run.emit(instanceEvent('removed', rec, run.now()));
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

/**
 * Marks an old instance draining, compare-and-set at the revision read. The facts loop may
 * update the record meanwhile (a verdict on its container): then it is read again and marked on
 * top of that, never overwritten. Null when it is gone.
 */
async function markDraining(run: DeployRun, read: Versioned<InstanceRecord>): Promise<InstanceRecord | null> {
  const { store } = run.engine;
  let current: Versioned<InstanceRecord> | null = read;
  for (let attempt = 1; current !== null; attempt++) {
    const next = { ...current.value, draining: true, updated_at: run.now() };
    try {
      await store.putInstance(next, current.revision);
      return next;
    } catch (err) {
      if (attempt >= DRAIN_MARK_ATTEMPTS || !isPloyzError(err, 'STORE_CONFLICT')) throw err;
    }
    current = await store.getInstance(next.namespace, next.service, next.id);
  }
  return null;
}

/** Stops (grace, then kill) and removes one instance's container, then forgets its record. */
export async function stopInstance(
  engine: EngineOptions,
  rec: InstanceRecord,
  graceMs: number,
): Promise<void> {
  await engine.agent.stop({
    namespace: rec.namespace,
    service: rec.service,
    instance: rec.id,
    machine: rec.machine,
    stop_grace_ms: graceMs,
  });
  await engine.store.deleteInstance(rec);
}

/** Stops and removes one routed instance and publishes its removal. */
export async function removeInstance(
  engine: EngineOptions,
  rec: InstanceRecord,
  graceMs: number,
  deployId: string | null,
): Promise<void> {
  await stopInstance(engine, rec, graceMs);
  await engine.store.appendRoutingEvents([
    instanceRemoved(rec.id, deployId, engine.clock.now().toISOString()),
  ]);
}

/**
 * Stops and forgets candidates no commit made live (no grace: they were never routed). One
 * that cannot be stopped stays as an orphan, and the next deploy's plan removes it. Returns
 * the ones that went.
 */
export async function discardCandidates(
  engine: EngineOptions,
  candidates: readonly InstanceRecord[],
): Promise<InstanceRecord[]> {
  const gone: InstanceRecord[] = [];
  await Promise.all(
    candidates.map(async (rec) => {
      try {
        await stopInstance(engine, rec, 0);
        gone.push(rec);
      } catch {
        // orphan (never routed); the next deploy removes it
      }
    }),
  );
  return gone;
}
