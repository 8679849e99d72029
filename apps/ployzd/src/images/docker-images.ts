/**
 * The local engine's side of an image transfer: resolve a name or id, `docker save` by id (a
 * stream), `docker load` from a stream (cancellable), tag and remove. Never pulls.
 */
import type { Readable } from 'node:stream';
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import { dockerStatus } from '../runtime/docker-errors.ts';
import type { ImageEngine } from './receiver.ts';

/** `repo[:tag]` → its repository and tag (`latest` when none); null for a digest reference. */
export function splitRef(ref: string): { repo: string; tag: string } | null {
  if (ref.includes('@')) return null;
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: 'latest' };
}

/** The image ids one `docker load` reports (its NDJSON answer); throws the error line it ends with. */
export function loadedIds(answer: string): string[] {
  const ids: string[] = [];
  for (const line of answer.split('\n')) {
    if (line.trim() === '') continue;
    let item: { stream?: unknown; error?: unknown; errorDetail?: { message?: unknown } };
    try {
      item = JSON.parse(line) as typeof item;
    } catch {
      continue;
    }
    if (item.error !== undefined || item.errorDetail !== undefined) {
      throw new Error(String(item.errorDetail?.message ?? item.error));
    }
    const id = /Loaded image ID: (sha256:[0-9a-f]{64})/.exec(String(item.stream ?? ''))?.[1];
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

export interface LocalImage {
  id: string;
  /** As the engine reports it; the saved tar is about as large. */
  size: number;
}

export class DockerImages implements ImageEngine {
  readonly #docker: () => Docker;

  constructor(docker: () => Docker) {
    this.#docker = docker;
  }

  async inspect(refOrId: string): Promise<LocalImage | null> {
    try {
      const info = await this.#docker().getImage(refOrId).inspect();
      return { id: info.Id, size: info.Size };
    } catch (error) {
      if (dockerStatus(error) === 404) return null;
      throw new PloyzError(
        'DOCKER_UNAVAILABLE',
        `cannot inspect image ${refOrId}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  async resolve(refOrId: string): Promise<string | null> {
    return (await this.inspect(refOrId))?.id ?? null;
  }

  /** `docker save <id>`: the tar as a stream (destroy it to stop). */
  async save(id: string): Promise<Readable> {
    return (await this.#docker().getImage(id).get()) as Readable;
  }

  async load(input: Readable, signal: AbortSignal): Promise<string[]> {
    // dockerode types the options as {}; docker-modem takes `abortSignal` (and keeps it off the URL).
    const options: { abortSignal: AbortSignal } = { abortSignal: signal };
    const answer = (await this.#docker().loadImage(input, options)) as Readable;
    let text = '';
    answer.setEncoding('utf8');
    for await (const piece of answer) text += piece as string;
    return loadedIds(text);
  }

  async tag(id: string, ref: string): Promise<void> {
    const parts = splitRef(ref);
    if (parts !== null) await this.#docker().getImage(id).tag(parts);
  }

  async remove(id: string): Promise<void> {
    await this.#docker().getImage(id).remove({ noprune: false });
  }
}
