/**
 * Images in a deploy: the plan's `images` say, per machine that gets a candidate, what happens to
 * each image it starts (preview and step 3), and step 3 makes it so — after the probe and the
 * re-plan, before the applying status (step 4), so a pull or a transfer that fails fails the
 * deploy with nothing of it written.
 *
 * An image without a registry host (or with `pull_policy = "never"`) is held by the coordinator's
 * id or sent from it over the mesh (docs/adr/0016-images-over-the-mesh.md). An image that names
 * its registry is pulled by the machine itself as its pull policy says (@ployz/types
 * `pullDecision`); the plan asks that machine's registry whether it would serve it, so a preview
 * lists the images a machine cannot pull (`unavailable`).
 */
import type { ImagePlan } from '@ployz/protocol';
import {
  DEFAULT_PULL_POLICY,
  PloyzError,
  type PullPolicy,
  pullDecision,
  registryOf,
  type ServiceSpec,
  toErrorBody,
} from '@ployz/types';
import { runBounded } from '../../workloads/start-queue.ts';
import type { EngineOptions } from '../context.ts';
import type { DeployPlan } from '../model/plan.ts';
import type { DeployService } from '../model/spec.ts';
import type { DeployRun } from './run.ts';

/** What the image lines need of a service: its image and (from its manifest spec) its pull policy. */
export type ImageSpecOf = Pick<DeployService, 'image'> & { source?: Pick<ServiceSpec, 'pull_policy'> };

export interface ImageNeed {
  image: string;
  machine: string;
  /** The strictest policy of the services that start it (always over if_not_present over never). */
  policy: PullPolicy;
}

const POLICY_RANK: Record<PullPolicy, number> = { never: 0, if_not_present: 1, always: 2 };

/** Each (image, machine) a plan starts a candidate with, once, sorted. Pure. */
export function imageNeeds(
  plan: Pick<DeployPlan, 'services'>,
  specs: ReadonlyMap<string, ImageSpecOf>,
): ImageNeed[] {
  const seen = new Map<string, ImageNeed>();
  for (const s of plan.services) {
    const spec = specs.get(s.service);
    const image = spec?.image;
    if (image === undefined || s.revision === null) continue;
    const policy = spec?.source?.pull_policy ?? DEFAULT_PULL_POLICY;
    for (const slot of s.slots) {
      if (slot.action !== 'start') continue;
      const key = `${image}\u0000${slot.machine}`;
      const prior = seen.get(key);
      if (prior === undefined || POLICY_RANK[policy] > POLICY_RANK[prior.policy])
        seen.set(key, { image, machine: slot.machine, policy });
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
  specs: ReadonlyMap<string, ImageSpecOf>,
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
    needs.map(async ({ image, machine, policy }): Promise<ImagePlan> => {
      if (pullDecision(image, policy, false) === 'pull')
        return planPull(engine, image, machine, policy, locals);
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

/** Whether `machine` holds `image` by name (the coordinator's own engine for itself). */
async function heldBy(
  engine: EngineOptions,
  image: string,
  machine: string,
  locals: ReadonlyMap<string, { id: string; size: number } | null>,
): Promise<boolean> {
  if (machine === engine.machineId) return (locals.get(image) ?? null) !== null;
  return (await engine.images?.has(machine, image, null)) === true;
}

/** The line of an image that names its registry on one machine: present, pull, unavailable or unknown. */
async function planPull(
  engine: EngineOptions,
  image: string,
  machine: string,
  policy: PullPolicy,
  locals: ReadonlyMap<string, { id: string; size: number } | null>,
): Promise<ImagePlan> {
  const registry = registryOf(image) ?? 'its registry';
  const mine = machine === engine.machineId ? (locals.get(image) ?? null) : null;
  const line = (action: ImagePlan['action'], detail: string): ImagePlan => ({
    image,
    machine,
    image_id: mine?.id ?? null,
    action,
    size_bytes: mine?.size ?? null,
    detail,
  });
  let held: boolean;
  try {
    held = await heldBy(engine, image, machine, locals);
  } catch (error) {
    return line('unknown', `machine ${machine} did not say: ${toErrorBody(error).message}`);
  }
  if (pullDecision(image, policy, held) === 'present')
    return line('present', 'held (pull_policy if_not_present)');
  const why = held ? 'pull_policy always' : `not on ${machine}`;
  const check = engine.images?.pullCheck;
  if (check === undefined) return line('pull', `${why}: pulled from ${registry} at the probe step`);
  try {
    const answer = await check(machine, image);
    return answer.available
      ? line('pull', `${why}: pulled from ${registry} at the probe step; ${answer.detail}`)
      : line('unavailable', `${why}, and ${machine} cannot pull it: ${answer.detail}`);
  } catch (error) {
    return line(
      'unknown',
      `machine ${machine} did not say whether it can pull it: ${toErrorBody(error).message}`,
    );
  }
}

/**
 * Runs the step's image work two at a time; the first failure is thrown (as a PloyzError of
 * `code` when it is not one) once the work under way has settled.
 */
async function twoAtATime(
  run: DeployRun,
  work: (() => Promise<void>)[],
  code: 'IMAGE_PULL_FAILED' | 'IMAGE_TRANSFER_FAILED',
): Promise<void> {
  const results = await runBounded(
    work.map((w) => ({ machine: 'images', run: w })),
    () => 2,
    run.abort.signal,
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    const reason: unknown = failed.reason;
    throw reason instanceof PloyzError
      ? reason
      : new PloyzError(code, String((reason as Error)?.message ?? reason));
  }
}

/** The plan's lines of images a machine pulls from their registry (their policy says so). */
function pullLines(run: DeployRun, plan: DeployPlan): (ImagePlan & { policy: PullPolicy })[] {
  const policies = new Map(
    imageNeeds(plan, run.specs).map((n) => [`${n.image}\u0000${n.machine}`, n.policy]),
  );
  return plan.images.flatMap((i) => {
    const policy = policies.get(`${i.image}\u0000${i.machine}`);
    if (policy === undefined || pullDecision(i.image, policy, false) !== 'pull') return [];
    return [{ ...i, policy }];
  });
}

/**
 * Step 3's pulls: every image from a registry the plan has a machine pull (or could not say
 * about), pulled by that machine, two machines at a time, progress as `image` events. The first
 * failure is thrown (IMAGE_PULL_FAILED naming the image and the machine) once the pulls under way
 * have settled.
 */
export async function pullImages(run: DeployRun, plan: DeployPlan): Promise<number> {
  const pull = run.engine.images?.pull;
  if (pull === undefined) return 0;
  const work = pullLines(run, plan).filter((i) => i.action !== 'present');
  await twoAtATime(
    run,
    work.map((i) => () => pull(i.machine, i.image, i.policy === 'always', run.emit, run.abort.signal)),
    'IMAGE_PULL_FAILED',
  );
  return work.length;
}

/**
 * Step 3's transfers: first the pulls of images from a registry (pullImages), then every other
 * image the plan says a machine lacks (or could not say), sent from this machine, two machines at
 * a time, progress as `image` events. The first failure is thrown (IMAGE_PULL_FAILED, or
 * IMAGE_TRANSFER_FAILED naming the machine) once the transfers under way have settled. Returns
 * the images pulled and sent.
 */
export async function sendImages(run: DeployRun, plan: DeployPlan): Promise<number> {
  const agent = run.engine.images;
  if (agent === undefined) return 0;
  const pulled = await pullImages(run, plan);
  const pulledHere = new Set(pullLines(run, plan).map((i) => `${i.image}\u0000${i.machine}`));
  const work = plan.images.filter(
    (i) =>
      (i.action === 'send' || i.action === 'unknown') &&
      i.image_id !== null &&
      i.size_bytes !== null &&
      !pulledHere.has(`${i.image}\u0000${i.machine}`),
  );
  await twoAtATime(
    run,
    work.map(
      (i) => () =>
        agent.send(
          i.machine,
          i.image,
          { id: i.image_id as string, size: i.size_bytes as number },
          run.emit,
          run.abort.signal,
        ),
    ),
    'IMAGE_TRANSFER_FAILED',
  );
  return pulled + work.length;
}
