/**
 * The receiving side of an image transfer (`image_receive_*`, @ployz/protocol image-commands.ts):
 * chunks go in sequence order into one `docker load` per transfer. The load reads its whole tar
 * before it registers anything, so a transfer that breaks off — aborted by the sender, no chunk
 * for `idleMs`, a chunk refused — cancels the load request and leaves nothing registered. At
 * close the byte count and sha256 are checked before the load may finish, and the loaded image id
 * against the sender's; a mismatch removes what the load registered.
 */
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import {
  IMAGE_WINDOW,
  type ImageAbortBody,
  type ImageChunkBody,
  type ImageChunkResult,
  type ImageCloseBody,
  type ImageCloseResult,
  type ImageHasBody,
  type ImageHasResult,
  type ImageOpenBody,
  type ImageOpenResult,
} from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { OrderedWriter } from './flow.ts';

/** What the receiver needs of the local engine (dockerImages in engine.ts; fakes in tests). */
export interface ImageEngine {
  /** The id a name or an id resolves to here, or null. */
  resolve(refOrId: string): Promise<string | null>;
  /**
   * A `docker load` reading `input` to its end; resolves with the image ids it reports. The
   * signal cancels the request (the engine then registers nothing).
   */
  load(input: Readable, signal: AbortSignal): Promise<string[]>;
  tag(id: string, ref: string): Promise<void>;
  /** Removes an image (not forced: one a container uses stays). */
  remove(id: string): Promise<void>;
}

interface Transfer {
  id: string;
  image: string;
  imageId: string;
  pipe: PassThrough;
  writer: OrderedWriter;
  hash: Hash;
  load: Promise<string[]>;
  cancel: AbortController;
  idle: NodeJS.Timeout;
  openedAt: number;
  closing: boolean;
}

export interface ReceiverOptions {
  /** A transfer without a chunk for this long is aborted (the sender is gone). */
  idleMs?: number;
  /** Transfers at once; one more is refused (IMAGE_TRANSFER_FAILED, busy). */
  maxTransfers?: number;
  window?: number;
  /** Bytes the load pipe buffers before a chunk's acknowledgement waits for it to drain. */
  pipeBytes?: number;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

function failed(reason: string, details: Record<string, unknown>, cause?: unknown): PloyzError {
  return new PloyzError('IMAGE_TRANSFER_FAILED', reason, {
    details: { ...details, reason },
    ...(cause !== undefined ? { cause } : {}),
  });
}

export class ImageReceiver {
  readonly #engine: () => ImageEngine;
  readonly #transfers = new Map<string, Transfer>();
  readonly #idleMs: number;
  readonly #max: number;
  readonly #window: number;
  readonly #pipeBytes: number;
  readonly #log: (message: string, fields: Record<string, unknown>) => void;

  constructor(engine: () => ImageEngine, options: ReceiverOptions = {}) {
    this.#engine = engine;
    this.#idleMs = options.idleMs ?? 30_000;
    this.#max = options.maxTransfers ?? 4;
    this.#window = options.window ?? IMAGE_WINDOW;
    this.#pipeBytes = options.pipeBytes ?? 4 * 1024 * 1024;
    this.#log = options.log ?? (() => {});
  }

  /** Transfers open now (tests, status). */
  get transfers(): number {
    return this.#transfers.size;
  }

  async has(body: ImageHasBody): Promise<ImageHasResult> {
    const engine = this.#engine();
    const local = await engine.resolve(body.image);
    if (body.image_id === null) return { present: local !== null, local_id: local };
    const present = local === body.image_id || (await engine.resolve(body.image_id)) === body.image_id;
    return { present, local_id: local };
  }

  async open(body: ImageOpenBody): Promise<ImageOpenResult> {
    const engine = this.#engine();
    if (this.#transfers.has(body.transfer)) return { present: false, window: this.#window };
    if ((await engine.resolve(body.image_id)) === body.image_id) {
      // Held already (maybe under another name): only the name is missing.
      if ((await engine.resolve(body.image)) !== body.image_id) await engine.tag(body.image_id, body.image);
      return { present: true, window: this.#window };
    }
    if (this.#transfers.size >= this.#max) {
      throw failed(`this machine receives ${this.#transfers.size} images already; try again shortly`, {
        image: body.image,
        busy: true,
      });
    }
    const pipe = new PassThrough({ highWaterMark: this.#pipeBytes });
    const cancel = new AbortController();
    const hash = createHash('sha256');
    const load = engine.load(pipe, cancel.signal);
    const transfer: Transfer = {
      id: body.transfer,
      image: body.image,
      imageId: body.image_id,
      pipe,
      hash,
      load,
      cancel,
      idle: this.#idleTimer(body.transfer),
      openedAt: performance.now(),
      closing: false,
      writer: new OrderedWriter(async (chunk) => {
        hash.update(chunk);
        if (!pipe.write(chunk)) await once(pipe, 'drain', { signal: cancel.signal });
      }, this.#window),
    };
    // A load that fails early (engine down, bad tar) fails the transfer's next chunk.
    load.catch((error: unknown) => {
      if (!transfer.closing) this.#drop(transfer, `docker load failed: ${(error as Error).message}`);
    });
    this.#transfers.set(body.transfer, transfer);
    this.#log('image transfer opened', {
      transfer: body.transfer,
      image: body.image,
      image_id: body.image_id,
    });
    return { present: false, window: this.#window };
  }

  async chunk(body: ImageChunkBody): Promise<ImageChunkResult> {
    const t = this.#get(body.transfer);
    t.idle.refresh();
    try {
      await t.writer.push(body.seq, Buffer.from(body.data, 'base64'));
    } catch (error) {
      const reason =
        error instanceof PloyzError ? error.message : `chunk ${body.seq}: ${(error as Error).message}`;
      this.#drop(t, reason);
      throw error instanceof PloyzError ? error : failed(reason, { image: t.image, seq: body.seq }, error);
    }
    t.idle.refresh();
    return { seq: body.seq, received_bytes: t.writer.bytes };
  }

  async close(body: ImageCloseBody): Promise<ImageCloseResult> {
    const t = this.#get(body.transfer);
    t.closing = true;
    clearTimeout(t.idle);
    const details = { image: t.image, image_id: t.imageId };
    const got = { chunks: t.writer.written, bytes: t.writer.bytes };
    if (got.chunks !== body.chunks || got.bytes !== body.bytes) {
      this.#drop(t, 'byte count mismatch');
      throw new PloyzError(
        'IMAGE_TRANSFER_MISMATCH',
        `received ${got.chunks} chunk(s), ${got.bytes} bytes of ${t.image}; the sender sent ${body.chunks}, ${body.bytes}`,
        { details: { ...details, received: got, sent: { chunks: body.chunks, bytes: body.bytes } } },
      );
    }
    const sha = t.hash.digest('hex');
    if (sha !== body.sha256) {
      this.#drop(t, 'sha256 mismatch');
      throw new PloyzError('IMAGE_TRANSFER_MISMATCH', `the tar of ${t.image} arrived with another sha256`, {
        details: { ...details, received: sha, sent: body.sha256 },
      });
    }
    t.pipe.end();
    let loaded: string[];
    try {
      loaded = await t.load;
    } catch (error) {
      this.#transfers.delete(t.id);
      throw failed(`docker load of ${t.image} failed: ${(error as Error).message}`, details, error);
    }
    this.#transfers.delete(t.id);
    const engine = this.#engine();
    if ((await engine.resolve(t.imageId)) !== t.imageId) {
      for (const id of loaded) await engine.remove(id).catch(() => {});
      throw new PloyzError(
        'IMAGE_TRANSFER_MISMATCH',
        `docker load of ${t.image} gave ${loaded.join(', ') || 'no image'}, not ${t.imageId}; removed again`,
        { details: { ...details, loaded } },
      );
    }
    if ((await engine.resolve(t.image)) !== t.imageId) await engine.tag(t.imageId, t.image);
    const seconds = (performance.now() - t.openedAt) / 1000;
    this.#log('image received', { transfer: t.id, image: t.image, bytes: got.bytes, seconds });
    return { image_id: t.imageId, bytes: got.bytes, seconds };
  }

  abort(body: ImageAbortBody): { aborted: boolean } {
    const t = this.#transfers.get(body.transfer);
    if (t === undefined) return { aborted: false };
    this.#drop(t, `aborted by the sender: ${body.reason}`);
    return { aborted: true };
  }

  /** Cancels every open transfer (the daemon stops). */
  abortAll(reason: string): void {
    for (const t of [...this.#transfers.values()]) this.#drop(t, reason);
  }

  #get(id: string): Transfer {
    const t = this.#transfers.get(id);
    if (t === undefined) {
      throw failed(`no transfer ${id} here (it was aborted, timed out or never opened)`, { transfer: id });
    }
    return t;
  }

  #idleTimer(id: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const t = this.#transfers.get(id);
      if (t !== undefined) this.#drop(t, `no chunk for ${this.#idleMs} ms`);
    }, this.#idleMs);
    timer.unref();
    return timer;
  }

  /** Ends a transfer that will not complete: the load request is cancelled, nothing registers. */
  #drop(t: Transfer, reason: string): void {
    if (this.#transfers.get(t.id) !== t) return;
    this.#transfers.delete(t.id);
    clearTimeout(t.idle);
    const error = failed(`the transfer of ${t.image} stopped: ${reason}; nothing was registered`, {
      image: t.image,
      transfer: t.id,
    });
    t.writer.fail(error);
    t.cancel.abort(error);
    t.pipe.destroy();
    t.load.catch(() => {});
    this.#log('image transfer dropped', { transfer: t.id, image: t.image, reason });
  }
}
