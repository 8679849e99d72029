/**
 * Step 5 for one phase: start its candidates beside the old instances, at most a few cold
 * starts per machine at a time, and wait until each passes readiness. The first failure stops
 * the phase (the others are aborted) and is the one reported.
 */
import { defaultStartConcurrency, runBounded } from '../../workloads/start-queue.ts';
import { instanceEvent } from '../model/events.ts';
import type { ServicePlan, SlotPlan } from '../model/plan.ts';
import { candidateRecord } from '../model/records.ts';
import type { DeployService } from '../model/spec.ts';
import type { DeployRun } from './run.ts';

interface Start {
  svc: ServicePlan & { revision: string };
  slot: SlotPlan;
  spec: DeployService;
}

function startsOf(run: DeployRun, owned: readonly ServicePlan[]): Start[] {
  const work: Start[] = [];
  for (const svc of owned) {
    const spec = run.specs.get(svc.service);
    for (const slot of svc.slots) {
      if (slot.action !== 'start') continue;
      const revision = svc.revision;
      if (spec === undefined || revision === null) throw new Error(`no spec for ${svc.service}`);
      work.push({ svc: { ...svc, revision }, slot, spec });
    }
  }
  return work;
}

export async function startCandidates(run: DeployRun, owned: readonly ServicePlan[]): Promise<void> {
  const work = startsOf(run, owned);
  const phaseAbort = new AbortController();
  const onAbort = () => phaseAbort.abort(run.abort.signal.reason);
  run.abort.signal.addEventListener('abort', onAbort, { once: true });
  const progress = { ready: 0, total: work.length };
  const limitOf = (machine: string) =>
    run.request.startConcurrency ?? defaultStartConcurrency(run.capacity.get(machine)?.cpus ?? 1);
  const results = await runBounded(
    work.map((start) => ({
      machine: start.slot.machine,
      run: async () => {
        try {
          await startOne(run, start, phaseAbort.signal, () => `${++progress.ready}/${progress.total}`);
        } catch (err) {
          phaseAbort.abort(err);
          throw err;
        }
      },
    })),
    limitOf,
    phaseAbort.signal,
  );
  run.abort.signal.removeEventListener('abort', onAbort);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // Report the first real failure, not the aborts it caused.
    const real = results.find(
      (r): r is PromiseRejectedResult =>
        r.status === 'rejected' && !(r.reason instanceof Error && r.reason.name === 'AbortError'),
    );
    throw (real ?? failed).reason;
  }
}

/** Record (starting) → start → record (container, ip) → readiness → record (running, ready). */
async function startOne(
  run: DeployRun,
  { svc, slot, spec }: Start,
  signal: AbortSignal,
  nextProgress: () => string,
): Promise<void> {
  const { agent, clock } = run.engine;
  const namespace = run.manifest.namespace;
  let record = candidateRecord(namespace, svc, slot, spec, run.deployId, run.now());
  await run.saveCandidate(record);
  run.emit(instanceEvent('starting', record, record.created_at));
  const started = await agent.start({
    namespace,
    service: spec,
    revision: svc.revision,
    deploy: run.deployId,
    instance: slot.instance,
    slot: slot.slot,
    machine: slot.machine,
  });
  record = { ...record, container_id: started.container_id, ip: started.ip, updated_at: run.now() };
  await run.saveCandidate(record);
  const startedAt = clock.now().getTime();
  await agent.waitReady(slot.machine, started, spec.readiness, signal);
  record = { ...record, state: 'running', ready: true, updated_at: run.now() };
  await run.saveCandidate(record);
  run.emit(
    instanceEvent('ready', record, run.now(), {
      waited_ms: Math.max(0, clock.now().getTime() - startedAt),
      progress: nextProgress(),
    }),
  );
}
