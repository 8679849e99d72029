/**
 * The pulling side of images from a registry (`image_pull`, `image_pull_check`): this machine's
 * engine pulls an image that names its registry, with the installation's credentials for that
 * host (registry-auth.ts) unsealed here and handed to the engine only. One pull per image at a
 * time: a second ask joins the one under way. `image_pull` is a long poll — it answers within
 * `wait_ms` with the progress so far — so a pull's outcome is kept a short while for the asker's
 * next poll; a failed pull is IMAGE_PULL_FAILED naming the image and this machine.
 */
import type { ImagePullBody, ImagePullCheckResult, ImagePullResult, PullFailure } from '@ployz/protocol';
import { PloyzError, parseImageRef } from '@ployz/types';
import type Docker from 'dockerode';
import { dockerStatus } from '../runtime/docker-errors.ts';
import { PullTracker, pullAdvice, pullFailureOf } from './pull-progress.ts';
import type { RegistryAuth } from './registry-auth.ts';

export interface PullerOptions {
  docker: () => Docker;
  /** This machine's id, for messages. */
  machine: string;
  /** The installation's credentials for a registry host, or null. */
  auth: (host: string) => Promise<RegistryAuth | null>;
  /** How long a finished pull's outcome answers the next poll. */
  keepMs?: number;
}

interface Job {
  started: number;
  tracker: PullTracker;
  outcome: { id: string } | { error: PloyzError } | null;
  settled: Promise<void>;
  finishedAt: number | null;
  /** The askers (`attempt`) this pull answers. */
  attempts: Set<string>;
}

export function pullFailed(
  image: string,
  machine: string,
  registry: string,
  reason: PullFailure,
  message: string,
  cause?: unknown,
): PloyzError {
  return new PloyzError(
    'IMAGE_PULL_FAILED',
    `machine ${machine} cannot pull ${image} (${reason}): ${message}; ${pullAdvice(reason, registry)}`,
    {
      details: { image, machine, registry, reason, message },
      ...(cause !== undefined ? { cause } : {}),
    },
  );
}

export class ImagePuller {
  readonly #o: PullerOptions;
  readonly #keepMs: number;
  readonly #jobs = new Map<string, Job>();

  constructor(options: PullerOptions) {
    this.#o = options;
    this.#keepMs = options.keepMs ?? 15_000;
  }

  async pull(body: ImagePullBody): Promise<ImagePullResult> {
    const registry = this.#registryOf(body.image);
    const known = this.#jobs.get(body.image);
    const joined = known !== undefined && (known.outcome === null || known.attempts.has(body.attempt));
    if (!body.always && !joined) {
      const held = await this.#resolve(body.image);
      if (held !== null) return this.#answer('present', held, null);
    }
    const job = joined ? known : this.#job(body.image, registry);
    job.attempts.add(body.attempt);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      job.settled,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, body.wait_ms);
      }),
    ]);
    clearTimeout(timer);
    const outcome = job.outcome;
    if (outcome === null) return this.#answer('pulling', null, job);
    if ('error' in outcome) throw outcome.error;
    return this.#answer('pulled', outcome.id, job);
  }

  /** Whether the registry serves the image to this machine (a manifest), nothing pulled. */
  async check(image: string): Promise<ImagePullCheckResult> {
    const registry = this.#registryOf(image);
    const auth = await this.#o.auth(registry);
    try {
      const info = (await this.#o
        .docker()
        .getImage(image)
        .distribution(auth === null ? {} : { authconfig: auth })) as { Descriptor?: { digest?: unknown } };
      const digest = typeof info.Descriptor?.digest === 'string' ? info.Descriptor.digest : null;
      return {
        available: true,
        digest,
        reason: null,
        detail: `${registry} serves it${digest ? ` (${digest.slice(0, 19)})` : ''}`,
      };
    } catch (error) {
      const message = engineMessage(error);
      const reason = pullFailureOf(message);
      return {
        available: false,
        digest: null,
        reason,
        detail: `${reason}: ${message}; ${pullAdvice(reason, registry)}`,
      };
    }
  }

  #registryOf(image: string): string {
    const parsed = parseImageRef(image);
    if (!parsed.ok || parsed.ref.registry === null) {
      throw new PloyzError(
        'INVALID_ARGUMENT',
        `${image} names no registry host; only such images are pulled`,
        {
          details: { image },
        },
      );
    }
    return parsed.ref.registry;
  }

  #answer(state: ImagePullResult['state'], id: string | null, job: Job | null): ImagePullResult {
    const p = job?.tracker.progress ?? { layers: 0, layers_done: 0, bytes: 0, total_bytes: null };
    const seconds = job === null ? 0 : ((job.finishedAt ?? performance.now()) - job.started) / 1000;
    return { state, image_id: id, ...p, seconds };
  }

  /** A new pull (replacing a finished one of the same image). */
  #job(image: string, registry: string): Job {
    const job: Job = {
      started: performance.now(),
      tracker: new PullTracker(),
      outcome: null,
      settled: Promise.resolve(),
      finishedAt: null,
      attempts: new Set(),
    };
    job.settled = this.#run(image, registry, job)
      .then(
        (id) => {
          job.outcome = { id };
        },
        (error: unknown) => {
          job.outcome = {
            error:
              error instanceof PloyzError && error.code === 'IMAGE_PULL_FAILED'
                ? error
                : pullFailed(
                    image,
                    this.#o.machine,
                    registry,
                    pullFailureOf(engineMessage(error)),
                    engineMessage(error),
                    error,
                  ),
          };
        },
      )
      .finally(() => {
        job.finishedAt = performance.now();
        const forget = setTimeout(() => {
          if (this.#jobs.get(image) === job) this.#jobs.delete(image);
        }, this.#keepMs);
        forget.unref();
      });
    this.#jobs.set(image, job);
    return job;
  }

  async #run(image: string, registry: string, job: Job): Promise<string> {
    const parsed = parseImageRef(image);
    if (!parsed.ok) throw new PloyzError('INVALID_ARGUMENT', parsed.reason);
    const { repository, tag, digest } = parsed.ref;
    const auth = await this.#o.auth(registry);
    const options = { fromImage: `${registry}/${repository}`, tag: digest ?? tag ?? 'latest' };
    const docker = this.#o.docker();
    const stream = (await (auth === null
      ? docker.createImage(options)
      : docker.createImage(auth, options))) as NodeJS.ReadableStream;
    let rest = '';
    stream.setEncoding('utf8');
    for await (const piece of stream) {
      rest += piece as string;
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) job.tracker.line(line);
    }
    job.tracker.line(rest);
    if (job.tracker.error !== null) {
      const message = job.tracker.error;
      throw pullFailed(image, this.#o.machine, registry, pullFailureOf(message), message);
    }
    const id = await this.#resolve(image);
    if (id === null) {
      throw pullFailed(
        image,
        this.#o.machine,
        registry,
        'failed',
        'the engine reported the pull done but does not hold the image',
      );
    }
    return id;
  }

  async #resolve(image: string): Promise<string | null> {
    try {
      return (await this.#o.docker().getImage(image).inspect()).Id;
    } catch (error) {
      if (dockerStatus(error) === 404) return null;
      throw new PloyzError('DOCKER_UNAVAILABLE', `cannot inspect image ${image}: ${engineMessage(error)}`, {
        cause: error,
      });
    }
  }
}

/** The engine's own words of a dockerode error (its JSON `message`), else the error's message. */
export function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  if (typeof json?.message === 'string') return json.message;
  return error instanceof Error ? error.message : String(error);
}
