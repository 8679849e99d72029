/**
 * The sending side of an image transfer: `docker save <id>` here, sliced into chunks and sent to
 * one machine's `image_receive_*` commands with at most a window of them unacknowledged (flow.ts),
 * then closed with the byte count and sha256 for the receiver to check. Any failure aborts the
 * receiver's load (best effort — it also gives up on its own after its idle time) and is
 * IMAGE_TRANSFER_FAILED naming the machine. Progress goes out as `image` events.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  IMAGE_CHUNK_BYTES,
  IMAGE_RPC,
  IMAGE_WINDOW,
  type ImageCommands,
  type ImageEvent,
  type ImageHasResult,
  type ImagePullCheckResult,
  type ImagePullResult,
  type RpcClient,
} from '@ployz/protocol';
import { PloyzError, registryOf } from '@ployz/types';
import type { DockerImages, LocalImage } from './docker-images.ts';
import { progressGate, rateLine, rechunk, sendWindowed } from './flow.ts';

export type EmitImageEvent = (event: ImageEvent) => void;

export interface SendResult {
  /** The machine held it already: nothing was sent. */
  present: boolean;
  bytes: number;
  seconds: number;
}

export interface SenderOptions {
  client: RpcClient<ImageCommands>;
  images: DockerImages;
  chunkBytes?: number;
  window?: number;
  /** One chunk's acknowledgement; a chunk not acknowledged in time is sent once more. */
  chunkTimeoutMs?: number;
  /** The close: the receiver's load registers the layers then. */
  closeTimeoutMs?: number;
  /** Between two progress events. */
  progressMs?: number;
}

function isSilence(error: unknown): boolean {
  return error instanceof PloyzError && (error.code === 'RPC_TIMEOUT' || error.code === 'RPC_NO_RESPONDERS');
}

export class ImageSender {
  readonly #client: RpcClient<ImageCommands>;
  readonly #images: DockerImages;
  readonly #chunkBytes: number;
  readonly #window: number;
  readonly #chunkTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #progressMs: number;
  /** One transfer per machine and image id at a time; a second asker shares it. */
  readonly #sending = new Map<string, Promise<SendResult>>();

  constructor(options: SenderOptions) {
    this.#client = options.client;
    this.#images = options.images;
    this.#chunkBytes = options.chunkBytes ?? IMAGE_CHUNK_BYTES;
    this.#window = options.window ?? IMAGE_WINDOW;
    this.#chunkTimeoutMs = options.chunkTimeoutMs ?? 30_000;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 300_000;
    this.#progressMs = options.progressMs ?? 1000;
  }

  /** This machine's image of that name, or null. */
  local(image: string): Promise<LocalImage | null> {
    return this.#images.inspect(image);
  }

  /** Whether `machine` holds the image (by id when given); RPC errors are thrown. */
  has(machine: string, image: string, imageId: string | null, timeoutMs = 2000): Promise<ImageHasResult> {
    return this.#client.call(machine, IMAGE_RPC.has, { machine, image, image_id: imageId }, { timeoutMs });
  }

  send(
    machine: string,
    image: string,
    local: LocalImage,
    emit: EmitImageEvent = () => {},
    signal?: AbortSignal,
  ): Promise<SendResult> {
    const key = `${machine}\u0000${local.id}`;
    const running = this.#sending.get(key);
    if (running !== undefined) return running;
    const work = this.#send(machine, image, local, emit, signal).finally(() => this.#sending.delete(key));
    this.#sending.set(key, work);
    return work;
  }

  async #send(
    machine: string,
    image: string,
    local: LocalImage,
    emit: EmitImageEvent,
    signal: AbortSignal | undefined,
  ): Promise<SendResult> {
    const transfer = randomBytes(16).toString('hex');
    const started = performance.now();
    const base = { type: 'image' as const, machine, image, image_id: local.id, total_bytes: local.size };
    const opened = await this.#client
      .call(
        machine,
        IMAGE_RPC.open,
        { machine, transfer, image, image_id: local.id, size_bytes: local.size },
        { timeoutMs: 10_000 },
      )
      .catch((error: unknown) => {
        throw this.#failure(machine, image, error, 'open');
      });
    if (opened.present) {
      emit({ ...base, action: 'present', bytes: 0, detail: `already holds ${local.id.slice(7, 19)}` });
      return { present: true, bytes: 0, seconds: 0 };
    }
    emit({ ...base, action: 'sending', bytes: 0, detail: `${local.id.slice(7, 19)} from this machine` });
    let source: Readable | null = null;
    const gate = progressGate(this.#progressMs);
    gate();
    try {
      source = await this.#images.save(local.id);
      const sent = await sendWindowed(
        rechunk(source, this.#chunkBytes),
        (seq, chunk) => this.#chunk(machine, transfer, seq, chunk),
        {
          window: Math.min(this.#window, opened.window),
          ...(signal !== undefined ? { signal } : {}),
          onAcked: ({ bytes }) => {
            if (gate()) emit({ ...base, action: 'progress', bytes });
          },
        },
      );
      const streamed = performance.now();
      const closed = await this.#client.call(
        machine,
        IMAGE_RPC.close,
        { machine, transfer, chunks: sent.chunks, bytes: sent.bytes, sha256: sent.sha256 },
        { timeoutMs: this.#closeTimeoutMs },
      );
      const seconds = (performance.now() - started) / 1000;
      const split = `${((streamed - started) / 1000).toFixed(1)} s streaming, ${((performance.now() - streamed) / 1000).toFixed(1)} s docker load`;
      emit({
        ...base,
        action: 'loaded',
        bytes: closed.bytes,
        detail: `${rateLine(closed.bytes, seconds)}: ${split}`,
      });
      return { present: false, bytes: closed.bytes, seconds };
    } catch (error) {
      source?.destroy();
      const failure = this.#failure(machine, image, error, 'transfer');
      await this.#client
        .call(
          machine,
          IMAGE_RPC.abort,
          { machine, transfer, reason: failure.message.slice(0, 900) },
          { timeoutMs: 2000 },
        )
        .catch(() => {});
      emit({ ...base, action: 'failed', bytes: 0, detail: failure.message });
      throw failure;
    }
  }

  /**
   * Has `machine` pull an image that names its registry (`image_pull`, asked again every
   * `pollMs` until present or pulled): progress as `image` events; IMAGE_PULL_FAILED (the
   * machine's own error, naming the image and the machine) when it cannot. Stops asking when
   * `signal` aborts (the machine's pull runs on; a later ask joins it).
   */
  async pull(
    machine: string,
    image: string,
    always: boolean,
    emit: EmitImageEvent = () => {},
    signal?: AbortSignal,
  ): Promise<ImagePullResult> {
    const base = { type: 'image' as const, machine, image };
    const gate = progressGate(this.#progressMs);
    const attempt = randomBytes(8).toString('hex');
    let announced = false;
    for (;;) {
      signal?.throwIfAborted();
      let answer: ImagePullResult;
      try {
        answer = await this.#client.call(
          machine,
          IMAGE_RPC.pull,
          { machine, image, always, wait_ms: this.#progressMs, attempt },
          { timeoutMs: this.#progressMs + 10_000 },
        );
      } catch (error) {
        const failure =
          error instanceof PloyzError && error.code === 'IMAGE_PULL_FAILED'
            ? error
            : new PloyzError(
                'IMAGE_PULL_FAILED',
                `machine ${machine} cannot pull ${image}: ${isSilence(error) ? `it stopped answering (${(error as Error).message})` : (error as Error).message}`,
                {
                  cause: error,
                  details: {
                    image,
                    machine,
                    registry: registryOf(image),
                    reason: 'failed',
                    message: String(error),
                  },
                },
              );
        emit({
          ...base,
          image_id: null,
          action: 'failed',
          bytes: 0,
          total_bytes: null,
          detail: failure.message,
        });
        throw failure;
      }
      const line = {
        ...base,
        image_id: answer.image_id,
        bytes: answer.bytes,
        total_bytes: answer.total_bytes,
      };
      if (answer.state === 'present') {
        emit({ ...line, action: 'present', detail: 'held already (pull_policy if_not_present)' });
        return answer;
      }
      if (!announced) {
        announced = true;
        emit({ ...line, action: 'pulling', detail: `from ${registryOf(image) ?? 'its registry'}` });
      }
      if (answer.state === 'pulled') {
        const layers = `${answer.layers} layer(s), ${answer.layers - answer.layers_done > 0 ? '' : 'all '}done`;
        emit({ ...line, action: 'pulled', detail: `${rateLine(answer.bytes, answer.seconds)}, ${layers}` });
        return answer;
      }
      if (gate())
        emit({ ...line, action: 'progress', detail: `${answer.layers_done}/${answer.layers} layer(s)` });
    }
  }

  /** Whether the registry would serve the image to `machine` (`image_pull_check`). */
  pullCheck(machine: string, image: string, timeoutMs = 10_000): Promise<ImagePullCheckResult> {
    return this.#client.call(machine, IMAGE_RPC.pullCheck, { machine, image }, { timeoutMs });
  }

  /** One chunk, sent once more when its acknowledgement does not come in time (the receiver dedups). */
  async #chunk(machine: string, transfer: string, seq: number, chunk: Buffer): Promise<void> {
    const body = { machine, transfer, seq, data: chunk.toString('base64') };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#client.call(machine, IMAGE_RPC.chunk, body, { timeoutMs: this.#chunkTimeoutMs });
        return;
      } catch (error) {
        if (attempt >= 2 || !(error instanceof PloyzError && error.code === 'RPC_TIMEOUT')) throw error;
      }
    }
  }

  #failure(machine: string, image: string, error: unknown, during: string): PloyzError {
    const details = { machine, image, during };
    if (error instanceof PloyzError && error.code.startsWith('IMAGE_TRANSFER_')) {
      return new PloyzError(error.code, `sending ${image} to ${machine}: ${error.message}`, {
        cause: error,
        details: { ...(error.details ?? {}), ...details },
      });
    }
    const reason = error instanceof Error ? error.message : String(error);
    const what = isSilence(error) ? `machine ${machine} stopped answering (${reason})` : reason;
    return new PloyzError(
      'IMAGE_TRANSFER_FAILED',
      `sending ${image} to ${machine} broke off (${during}): ${what}; nothing was registered there`,
      { cause: error, details: { ...details, reason } },
    );
  }
}
