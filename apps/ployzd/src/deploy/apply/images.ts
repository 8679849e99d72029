/**
 * Images without a registry, in a deploy: the plan's `images` say, per machine that gets a
 * candidate, whether it holds each image it starts by the coordinator's id (preview and step 3),
 * and step 3 sends the missing ones from the coordinator over the mesh — after the probe and the
 * re-plan, before the applying status (step 4), so a transfer that breaks off fails the deploy
 * with nothing of it written (docs/adr/0016-images-over-the-mesh.md).
 */
import type { ImagePlan } from '@ployz/protocol';
import { PloyzError, toErrorBody } from '@ployz/types';
import { runBounded } from '../../workloads/start-queue.ts';
import type { EngineOptions } from '../context.ts';
import type { DeployPlan } from '../model/plan.ts';
import type { DeployService } from '../model/spec.ts';
import type { DeployRun } from './run.ts';

/** Each (image, machine) a plan starts a candidate with, once, sorted. Pure. */
export function imageNeeds(
  plan: Pick<DeployPlan, 'services'>,
  specs: ReadonlyMap<string, Pick<DeployService, 'image'>>,
): { image: string; machine: string }[] {
  const seen = new Map<string, { image: string; machine: string }>();
  for (const s of plan.services) {
    const image = specs.get(s.service)?.image;
    if (image === undefined || s.revision === null) continue;
    for (const slot of s.slots) {
      if (slot.action !== 'start') continue;
      seen.set(`${image}\u0000${slot.machine}`, { image, machine: slot.machine });
    }
  }
  return [...seen.values()].sort((a, b) =>
    a.image === b.image ? (a.machine < b.machine ? -1 : 1) : a.image < b.image ? -1 : 1,
  );
}

/** Machines lacking an image at once (`ImagePlan` lines), for the step's detail and the preview. */
export function sendsOf(images: readonly ImagePlan[]): ImagePlan[] {
  return images.filter((i) => i.action === 'send');
}

/**
 * The plan with its `images`: the coordinator's own machine is checked locally, every other one
 * with `image_has` (a machine that does not answer is `unknown`, not an error).
 */
export async function planImages(
  engine: EngineOptions,
  plan: DeployPlan,
  specs: ReadonlyMap<string, Pick<DeployService, 'image'>>,
): Promise<DeployPlan> {
  const agent = engine.images;
  const needs = imageNeeds(plan, specs);
  if (agent === undefined || needs.length === 0) return plan;
  const locals = new Map(
    await Promise.all(
      [...new Set(needs.map((n) => n.image))].map(async (i) => [i, await agent.local(i)] as const),
    ),
  );
  const self = engine.machineId;
  const images = await Promise.all(
    needs.map(async ({ image, machine }): Promise<ImagePlan> => {
      const local = locals.get(image) ?? null;
      const line = (action: ImagePlan['action'], detail: string): ImagePlan => ({
        image,
        machine,
        image_id: local?.id ?? null,
        action,
        size_bytes: local?.size ?? null,
        detail,
      });
      if (machine === self) {
        return local !== null
          ? line('present', 'on the coordinating machine')
          : line('missing', `not on ${self} (the coordinating machine) either`);
      }
      try {
        if (await agent.has(machine, image, local?.id ?? null)) return line('present', 'held by id');
        return local !== null
          ? line('send', `sent from ${self} at the probe step`)
          : line('missing', `on neither ${machine} nor ${self} (the coordinating machine)`);
      } catch (error) {
        return line('unknown', `machine ${machine} did not say: ${toErrorBody(error).message}`);
      }
    }),
  );
  return { ...plan, images };
}

/**
 * Step 3's transfers: every image the plan says a machine lacks (or could not say), sent from
 * this machine, two machines at a time, progress as `image` events. The first failure is thrown
 * (IMAGE_TRANSFER_FAILED naming the machine) once the transfers under way have settled.
 */
export async function sendImages(run: DeployRun, plan: DeployPlan): Promise<number> {
  const agent = run.engine.images;
  if (agent === undefined) return 0;
  const work = plan.images.filter(
    (i) => (i.action === 'send' || i.action === 'unknown') && i.image_id !== null && i.size_bytes !== null,
  );
  if (work.length === 0) return 0;
  const results = await runBounded(
    work.map((i) => ({
      machine: 'images',
      run: () =>
        agent.send(
          i.machine,
          i.image,
          { id: i.image_id as string, size: i.size_bytes as number },
          run.emit,
          run.abort.signal,
        ),
    })),
    () => 2,
    run.abort.signal,
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    const reason: unknown = failed.reason;
    throw reason instanceof PloyzError
      ? reason
      : new PloyzError('IMAGE_TRANSFER_FAILED', String((reason as Error)?.message ?? reason));
  }
  return work.length;
}
