import { readFile } from 'node:fs/promises';
import type { Store } from '@ployz/store';
import {
  InstanceRecord,
  MachineRecord,
  PloyzError,
  ReleaseRecord,
  RevisionRecord,
  type RoutingFeed,
  type RoutingSnapshot,
  type SequencedRoutingEvent,
} from '@ployz/types';
import { z } from 'zod';

const SnapshotFile = z.object({
  seq: z.number().int().nonnegative().default(0),
  machines: z.array(MachineRecord).default([]),
  revisions: z.array(RevisionRecord).default([]),
  releases: z.array(ReleaseRecord).default([]),
  instances: z.array(InstanceRecord).default([]),
});

/**
 * A fixed snapshot read from a JSON file (a RoutingSnapshot): for running the gateway without
 * NATS (benchmarks, standalone use). It never has events; `follow` waits until aborted.
 */
export class FileSnapshotFeed implements RoutingFeed {
  readonly #path: string;
  #seq = 0;

  constructor(path: string) {
    this.#path = path;
  }

  async snapshot(): Promise<RoutingSnapshot> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (error) {
      throw new PloyzError('CONFIG_INVALID', `cannot read the snapshot file ${this.#path}`, { cause: error });
    }
    const parsed = SnapshotFile.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new PloyzError(
        'CONFIG_INVALID',
        `the snapshot file ${this.#path} is not a routing snapshot: ${parsed.error.message}`,
      );
    }
    this.#seq = parsed.data.seq;
    return parsed.data;
  }

  async *follow(_fromSeq: number, signal: AbortSignal): AsyncIterable<SequencedRoutingEvent> {
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  async lastSeq(): Promise<number | null> {
    return this.#seq;
  }
}

/**
 * The NATS-backed feed of @ployz/store, opened lazily: while NATS (or the store's assets) is not
 * there, `snapshot()` fails with STORE_UNAVAILABLE and the follower retries with backoff, so
 * the gateway starts and reports "not loaded" instead of exiting.
 */
export class LazyStoreFeed implements RoutingFeed {
  readonly #options: { servers: string; installation: string; authority: string };
  #store: Store | undefined;
  #opening: Promise<Store> | undefined;

  constructor(options: { servers: string; installation: string; authority: string }) {
    this.#options = options;
  }

  async #open(): Promise<Store> {
    if (this.#store !== undefined) return this.#store;
    // Loaded on first use: a gateway fed from a snapshot file never pays for the NATS client.
    this.#opening ??= import('@ployz/store')
      .then(({ openStore }) => openStore({ ...this.#options, ensure: false }))
      .then((store) => {
        this.#store = store;
        return store;
      })
      .finally(() => {
        this.#opening = undefined;
      });
    try {
      return await this.#opening;
    } catch (error) {
      throw new PloyzError('STORE_UNAVAILABLE', `cannot open the routing store at ${this.#options.servers}`, {
        cause: error,
      });
    }
  }

  async snapshot(): Promise<RoutingSnapshot> {
    return (await this.#open()).routing.snapshot();
  }

  async *follow(fromSeq: number, signal: AbortSignal): AsyncIterable<SequencedRoutingEvent> {
    const store = await this.#open();
    yield* store.routing.follow(fromSeq, signal);
  }

  async lastSeq(): Promise<number | null> {
    if (this.#store === undefined) return null;
    return this.#store.routing.lastSeq();
  }

  async close(): Promise<void> {
    await this.#store?.close();
  }
}
