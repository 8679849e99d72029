/**
 * Replace-beside (docs/adr/0014-replace-beside.md): an edge app (gateway, dns) is replaced by
 * starting the new container next to the old one in the networking container's netns — both bind
 * the serving ports with SO_REUSEPORT — waiting for the new one's health on its alternate admin
 * port, then draining (SIGTERM: stop accepting, finish in-flight, exit) and removing the old one,
 * and giving the new one the component's name. A daemon that died mid-way finds the new container
 * under `<name>.next` and finishes (or undoes) the replacement before it plans.
 */
import { LABELS } from '@ployz/identity';
import { PloyzError } from '@ployz/types';
import type { DockerEngine } from '../runtime/docker.ts';
import type { DesiredComponent } from './component-spec.ts';
import type { ReconcileResult } from './executor.ts';

/** How long the new container may take to answer healthy (its start wait is 10 s). */
export const BESIDE_HEALTHY_MS = 60_000;
const POLL_MS = 100;

/** The name a replacement runs under until the old container is gone. */
export function besideName(name: string): string {
  return `${name}.next`;
}

/** The admin health's HTTP status at `url`, or null when nothing answers. */
async function healthStatus(url: string): Promise<number | null> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await r.body?.cancel();
    return r.status;
  } catch {
    return null;
  }
}

/**
 * Waits for the replacement `id` to answer on `url` — 200 when `strict`, any answer otherwise —
 * and fails if it stops or the time runs out.
 */
async function waitHealthy(
  engine: DockerEngine,
  id: string,
  url: string,
  timeoutMs: number,
  strict: boolean,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    const status = await healthStatus(url);
    if (status === 200 || (!strict && status !== null)) return Date.now() - started;
    const live = await engine.inspectByName(id);
    if (live === null || !live.running) {
      throw new PloyzError(
        'REPLACEMENT_UNHEALTHY',
        `the replacement ${id.slice(0, 12)} exited before it was healthy`,
      );
    }
    if (Date.now() - started > timeoutMs) {
      throw new PloyzError(
        'REPLACEMENT_UNHEALTHY',
        `the replacement ${id.slice(0, 12)} was not healthy on ${url} within ${timeoutMs} ms; the old container keeps serving`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export interface BesideOutcome {
  id: string;
  /** What happened, for the reconcile result's detail. */
  detail: string;
}

/**
 * From a started replacement to the end: healthy → drain and remove the old one → rename. On a
 * replacement that does not become healthy, it is removed and the old one left serving (thrown).
 */
async function finish(
  engine: DockerEngine,
  want: DesiredComponent,
  id: string,
  oldId: string | null,
  timeoutMs: number,
): Promise<BesideOutcome> {
  const beside = want.spec.beside;
  if (beside === null) throw new PloyzError('INTERNAL', `${want.spec.component} is not replaced beside`);
  // With no old one running the admin port was free: the new one holds it, not the alternate.
  const old = oldId === null ? null : await engine.inspectByName(oldId);
  let healthyMs = 0;
  if (old?.running === true) {
    // The new one must be as healthy as the old: when the old one is not healthy either (its view
    // is stale — the store unreachable, or no routing stream yet), an answer of any status on the
    // alternate port (up, serving its own view) is enough, or nothing could ever replace it.
    const strict = (await healthStatus(beside.healthUrl)) === 200;
    try {
      healthyMs = await waitHealthy(engine, id, beside.altHealthUrl, timeoutMs, strict);
    } catch (error) {
      await engine.remove(id);
      throw error;
    }
  }
  const drainStarted = Date.now();
  if (oldId !== null) {
    await engine.stop(oldId, beside.drainSeconds);
    await engine.remove(oldId);
  }
  await engine.rename(id, want.spec.name);
  const drained =
    oldId === null ? '' : `; the old one drained and removed in ${Date.now() - drainStarted} ms`;
  return { id, detail: `started beside the old container, healthy in ${healthyMs} ms${drained}` };
}

/** Replaces the running container `oldId` by a new one started beside it. */
export async function replaceBeside(
  engine: DockerEngine,
  want: DesiredComponent,
  oldId: string,
  parentId: string | null,
  timeoutMs = BESIDE_HEALTHY_MS,
): Promise<BesideOutcome> {
  const next = besideName(want.spec.name);
  const leftover = await engine.inspectByName(next);
  if (leftover !== null) await engine.remove(leftover.id);
  const id = await engine.createStarted({ ...want.spec, name: next }, want.configHash, parentId);
  return finish(engine, want, id, oldId, timeoutMs);
}

/**
 * After a crash mid-replacement: a `<name>.next` of this installation that carries the expected
 * config hash is finished (healthy → the other drained, it renamed); any other is removed. Returns
 * a result per container it acted on (for the log), none when there was none.
 */
export async function settleBeside(
  engine: DockerEngine,
  desired: readonly DesiredComponent[],
  installation: string,
  timeoutMs = BESIDE_HEALTHY_MS,
): Promise<ReconcileResult[]> {
  const done: ReconcileResult[] = [];
  for (const want of desired) {
    if (want.spec.beside === null) continue;
    const next = await engine.inspectByName(besideName(want.spec.name));
    if (next === null || next.labels[LABELS.installation] !== installation) continue;
    const current = await engine.inspectByName(want.spec.name);
    const base = {
      component: want.spec.component,
      containerName: want.spec.name,
      previousContainerId: current?.id ?? null,
      at: new Date().toISOString(),
    };
    if (next.labels[LABELS.configHash] !== want.configHash || !next.running) {
      await engine.remove(next.id);
      done.push({
        ...base,
        outcome: 'failed',
        containerId: null,
        reason: 'replacement_abandoned',
        detail: `${next.name} (${next.id.slice(0, 12)}) was removed: not the expected config, or stopped`,
      });
      continue;
    }
    try {
      const out = await finish(engine, want, next.id, current?.id ?? null, timeoutMs);
      done.push({
        ...base,
        outcome: 'recreated',
        containerId: out.id,
        reason: 'replacement_resumed',
        detail: out.detail,
      });
    } catch (error) {
      done.push({
        ...base,
        outcome: 'failed',
        containerId: null,
        reason: 'replacement_abandoned',
        detail: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return done;
}
