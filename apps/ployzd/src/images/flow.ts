/**
 * The flow control of an image transfer, pure (no Docker, no NATS): the sender slices the
 * `docker save` stream into chunks (`rechunk`) and keeps at most a window of them unacknowledged
 * (`sendWindowed`); the receiver writes them into `docker load` in sequence order whatever order
 * they arrive in, and acknowledges each once it is written (`OrderedWriter`). Both sides hold at
 * most `window` chunks, so memory is bounded by window × chunk size, never the image.
 */
import { createHash } from 'node:crypto';
import { formatBytes } from '@ployz/protocol';

/**
 * Slices a byte stream into chunks of exactly `size` bytes, the last one shorter (none for an
 * empty stream). A chunk is a view of the input when it lies inside one input buffer, a copy when
 * it spans several.
 */
export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer`);
  let parts: Buffer[] = [];
  let held = 0;
  for await (const piece of source) {
    let input = Buffer.isBuffer(piece)
      ? piece
      : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (input.length > 0) {
      const take = Math.min(size - held, input.length);
      parts.push(input.subarray(0, take));
      held += take;
      input = input.subarray(take);
      if (held === size) {
        yield parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
        parts = [];
        held = 0;
      }
    }
  }
  if (held > 0) yield parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, held);
}

export interface SendOptions {
  /** Chunks sent and not yet acknowledged, at most. */
  window: number;
  /** Stops sending (no new chunk); the call rejects with its reason once the in-flight ones settle. */
  signal?: AbortSignal;
  /** After each acknowledgement: chunks and bytes acknowledged so far. */
  onAcked?: (acked: { chunks: number; bytes: number }) => void;
}

export interface SentSummary {
  chunks: number;
  bytes: number;
  /** Of every byte sent, in order (hex). */
  sha256: string;
}

/**
 * Sends every chunk of `chunks` with `send(seq, chunk)` (seq 0, 1, 2…), at most `window` of them
 * unacknowledged: the next chunk is read from the source only when one is acknowledged, so a slow
 * receiver slows the reading. The first failure stops it — no further chunk is read or sent — and
 * is the rejection once the chunks still in flight have settled. Resolves when every chunk is
 * acknowledged.
 */
export async function sendWindowed(
  chunks: AsyncIterable<Buffer>,
  send: (seq: number, chunk: Buffer) => Promise<unknown>,
  options: SendOptions,
): Promise<SentSummary> {
  const { window, signal, onAcked } = options;
  if (!Number.isInteger(window) || window < 1) throw new RangeError('window must be a positive integer');
  const hash = createHash('sha256');
  const inflight = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  let seq = 0;
  let bytes = 0;
  const acked = { chunks: 0, bytes: 0 };
  const stopped = () => {
    if (failure === null && signal?.aborted) failure = { error: signal.reason };
    return failure !== null;
  };
  try {
    for await (const chunk of chunks) {
      while (inflight.size >= window && !stopped()) await Promise.race(inflight);
      if (stopped()) break;
      const n = seq++;
      hash.update(chunk);
      bytes += chunk.length;
      const pending: Promise<void> = send(n, chunk)
        .then(
          () => {
            acked.chunks += 1;
            acked.bytes += chunk.length;
            onAcked?.({ ...acked });
          },
          (error: unknown) => {
            failure ??= { error };
          },
        )
        .finally(() => inflight.delete(pending));
      inflight.add(pending);
    }
  } catch (error) {
    // The source failed (docker save broke off).
    failure ??= { error };
  }
  await Promise.all(inflight);
  if (failure === null) stopped();
  if (failure !== null) throw (failure as { error: unknown }).error;
  return { chunks: seq, bytes, sha256: hash.digest('hex') };
}

interface Pending {
  data: Buffer;
  waiters: { resolve: () => void; reject: (error: unknown) => void }[];
}

/**
 * The receiving side: chunks arrive numbered, possibly out of order or twice (a resend after a
 * timeout); `write` gets them in sequence order, one at a time, each after the previous write
 * resolved (a write that waits for the load to drain holds the next ones back). `push` resolves
 * once its chunk is written — the acknowledgement. A chunk already written resolves at once; one
 * `window` or more ahead of the next to write is refused (the sender broke the window); after a
 * failed write, or `fail`, every push rejects.
 */
export class OrderedWriter {
  readonly #write: (chunk: Buffer) => Promise<void>;
  readonly #window: number;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #bytes = 0;
  #pumping = false;
  #failed: { error: unknown } | null = null;

  constructor(write: (chunk: Buffer) => Promise<void>, window: number) {
    if (!Number.isInteger(window) || window < 1) throw new RangeError('window must be a positive integer');
    this.#write = write;
    this.#window = window;
  }

  /** The next sequence number to write = chunks written so far. */
  get written(): number {
    return this.#next;
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Chunks received and not written yet. */
  get buffered(): number {
    return this.#pending.size;
  }

  get failed(): boolean {
    return this.#failed !== null;
  }

  push(seq: number, data: Buffer): Promise<void> {
    if (this.#failed !== null) return Promise.reject(this.#failed.error);
    if (seq < this.#next) return Promise.resolve();
    if (seq >= this.#next + this.#window) {
      return Promise.reject(
        new RangeError(`chunk ${seq} is outside the window (next ${this.#next}, window ${this.#window})`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const entry = this.#pending.get(seq);
      if (entry !== undefined) entry.waiters.push({ resolve, reject });
      else this.#pending.set(seq, { data, waiters: [{ resolve, reject }] });
      void this.#pump();
    });
  }

  /** Rejects every waiting push and every later one with `error`. */
  fail(error: unknown): void {
    if (this.#failed !== null) return;
    this.#failed = { error };
    for (const entry of this.#pending.values()) for (const w of entry.waiters) w.reject(error);
    this.#pending.clear();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        if (this.#failed !== null) return;
        const entry = this.#pending.get(this.#next);
        if (entry === undefined) return;
        try {
          await this.#write(entry.data);
        } catch (error) {
          this.fail(error);
          return;
        }
        if (this.#failed !== null) return;
        this.#pending.delete(this.#next);
        this.#next += 1;
        this.#bytes += entry.data.length;
        for (const w of entry.waiters) w.resolve();
      }
    } finally {
      this.#pumping = false;
    }
  }
}

/** True at most once per `intervalMs` (the first call included): how often progress is reported. */
export function progressGate(intervalMs: number, now: () => number = Date.now): () => boolean {
  let last = Number.NEGATIVE_INFINITY;
  return () => {
    const t = now();
    if (t - last < intervalMs) return false;
    last = t;
    return true;
  };
}

/** `214.0 MB in 6.2 s (34.5 MB/s)`. */
export function rateLine(bytes: number, seconds: number): string {
  const rate = seconds > 0 ? ` (${formatBytes(Math.round(bytes / seconds))}/s)` : '';
  return `${formatBytes(bytes)} in ${seconds.toFixed(1)} s${rate}`;
}
