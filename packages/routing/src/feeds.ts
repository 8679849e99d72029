/**
 * The two RoutingFeeds the edge apps (gateway, DNS) run on:
 * - `LazyStoreFeed`: @ployz/store's NATS feed, opened on first use and reopened after a failed
 *   open, so an edge app starts, reports "not loaded" and keeps retrying while NATS is away.
 *   The NATS client is imported only then: a snapshot-fed process never loads it.
 * - `FileSnapshotFeed`: a fixed RoutingSnapshot from a JSON file, for benchmarks and for serving
 *   without NATS. It has no events; `follow` waits until aborted.
 */
import { readFileSync } from 'node:fs';
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

export class FileSnapshotFeed implements RoutingFeed {
  readonly #path: string;
  #seq = 0;

  constructor(path: string) {
    this.#path = path;
  }

  /** Reads and validates the file now, so a bad path or file fails at start with CONFIG_INVALID. */
  static async load(path: string): Promise<FileSnapshotFeed> {
    const feed = new FileSnapshotFeed(path);
    await feed.snapshot();
    return feed;
  }

  async snapshot(): Promise<RoutingSnapshot> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (error) {
      throw new PloyzError('CONFIG_INVALID', `cannot read the snapshot file ${this.#path}`, { cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new PloyzError('CONFIG_INVALID', `the snapshot file ${this.#path} is not JSON`, { cause: error });
    }
    const parsed = SnapshotFile.safeParse(json);
    if (!parsed.success) {
      throw new PloyzError(
        'CONFIG_INVALID',
        `the snapshot file ${this.#path} is not a routing snapshot (machines, revisions, releases, instances): ${parsed.error.message}`,
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

export interface LazyStoreFeedOptions {
  servers: string;
  installation: string;
  authority: string;
  /** Connection name shown by nats-server (`ployz-gateway`, `ployz-dns`). */
  name?: string;
  /**
   * NKey seed of the component's NATS identity, or a function returning the current one (read at
   * every reconnect; docs/adr/0011-trust-model.md).
   */
  nkeySeed?: string | (() => string) | undefined;
  /**
   * A file holding the seed (an edge app's mount, written by ployzd), read again at every connect
   * and reconnect so a rotated seed is picked up without a restart. Wins over `nkeySeed`.
   */
  nkeySeedFile?: string | undefined;
  /**
   * The edge identity this feed connects as: its reply inboxes get that identity's prefix
   * (@ployz/store `inboxPrefixOf`), the only one its NATS permissions let it subscribe to.
   */
  identity?: 'gateway' | 'dns' | undefined;
}

/**
 * A seed source reading a file at every connect. It reads once now, so a missing or unreadable
 * file is a clear error at start rather than a silent reconnect loop.
 */
export function seedFromFile(path: string): () => string {
  const read = () => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (cause) {
      throw new PloyzError('CONFIG_INVALID', `cannot read the NATS NKey seed file ${path}`, { cause });
    }
    if (!text.startsWith('SU')) {
      throw new PloyzError('CONFIG_INVALID', `${path} does not hold an NKey user seed (SU…)`);
    }
    return text;
  };
  read();
  return read;
}

export class LazyStoreFeed implements RoutingFeed {
  readonly #options: LazyStoreFeedOptions;
  #store: Store | undefined;
  #opening: Promise<Store> | undefined;
  #closed = false;

  constructor(options: LazyStoreFeedOptions) {
    const { nkeySeedFile, ...rest } = options;
    this.#options = nkeySeedFile === undefined ? rest : { ...rest, nkeySeed: seedFromFile(nkeySeedFile) };
  }

  async #open(): Promise<Store> {
    if (this.#closed) throw new PloyzError('STORE_UNAVAILABLE', 'the routing feed is closed');
    if (this.#store !== undefined) return this.#store;
    this.#opening ??= import('@ployz/store')
      .then(({ openStore, inboxPrefixOf }) => {
        const { identity, ...options } = this.#options;
        return openStore({
          ...options,
          ...(identity === undefined ? {} : { inboxPrefix: inboxPrefixOf(identity) }),
          ensure: false,
        });
      })
      .then(async (store) => {
        if (this.#closed) {
          await store.close();
          throw new PloyzError('STORE_UNAVAILABLE', 'the routing feed was closed while opening');
        }
        this.#store = store;
        return store;
      })
      .finally(() => {
        this.#opening = undefined;
      });
    try {
      return await this.#opening;
    } catch (error) {
      throw new PloyzError(
        'STORE_UNAVAILABLE',
        `cannot open the routing store at ${this.#options.servers}; check that ployz-nats runs`,
        { cause: error },
      );
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
    this.#closed = true;
    const store = this.#store;
    this.#store = undefined;
    await store?.close();
  }
}
