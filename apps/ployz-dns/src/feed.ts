/**
 * Where the routing records come from: the NATS store (normal operation) or a fixed snapshot
 * file (benchmarks, offline debugging). The NATS feed is available at once: until the store
 * answers, the follower sees STORE_UNAVAILABLE and retries, while the DNS listeners already
 * forward names outside the zone.
 */
import { readFile } from 'node:fs/promises';
import { MemoryRoutingFeed } from '@ployz/routing';
import { openStore, type Store } from '@ployz/store';
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

export async function snapshotFileFeed(path: string): Promise<RoutingFeed> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PloyzError(
      'CONFIG_INVALID',
      `cannot read --snapshot-file ${path}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  let parsed: RoutingSnapshot;
  try {
    parsed = SnapshotFile.parse(JSON.parse(text));
  } catch (error) {
    throw new PloyzError(
      'CONFIG_INVALID',
      `--snapshot-file ${path} is not a routing snapshot (JSON with machines, releases, instances)`,
      {
        cause: error,
      },
    );
  }
  return new MemoryRoutingFeed(parsed);
}

export interface StoreFeed extends RoutingFeed {
  /** Connects in the background until it succeeds or `close()` is called. */
  connect(onError: (error: unknown) => void): void;
  close(): Promise<void>;
}

export function natsFeed(options: { natsUrl: string; installation: string; authority: string }): StoreFeed {
  let store: Store | null = null;
  let closed = false;
  const unavailable = () =>
    new PloyzError(
      'STORE_UNAVAILABLE',
      `not connected to NATS at ${options.natsUrl} yet; check that ployz-nats runs`,
    );
  const current = (): Store => {
    if (store === null) throw unavailable();
    return store;
  };
  return {
    snapshot: () => current().routing.snapshot(),
    follow(fromSeq: number, signal: AbortSignal): AsyncIterable<SequencedRoutingEvent> {
      return current().routing.follow(fromSeq, signal);
    },
    lastSeq: async () => (store === null ? null : store.routing.lastSeq()),
    connect(onError) {
      void (async () => {
        let delay = 250;
        while (!closed && store === null) {
          try {
            const opened = await openStore({
              servers: options.natsUrl,
              name: 'ployz-dns',
              installation: options.installation,
              authority: options.authority,
            });
            if (closed) await opened.close();
            else store = opened;
          } catch (error) {
            onError(error);
            await new Promise((resolve) => setTimeout(resolve, delay));
            delay = Math.min(delay * 2, 5000);
          }
        }
      })();
    },
    async close() {
      closed = true;
      await store?.close();
      store = null;
    },
  };
}
