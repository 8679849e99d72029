/**
 * An edge that fell behind a trimmed routing stream, on a real nats-server: the stream keeps
 * only its last few events (retention), the follower's position was trimmed away, so follow
 * breaks with ROUTING_FEED_BROKEN (gap), the follower says so and rebuilds from a new snapshot.
 */
import { openStore, type Store } from '@ployz/store';
import { startNats } from '@ployz/testkit';
import { isPloyzError, type RoutingFeed } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machine } from '../test/records.ts';
import { createFollower } from './follower.ts';
import type { RoutingState } from './state.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;
const at = '2026-01-01T00:00:00Z';

beforeAll(async () => {
  nats = await startNats();
  store = await openStore({
    servers: nats.url,
    installation: 'local',
    authority: 'auth-trim',
    routingRetention: { maxMsgs: 3, maxAgeMs: 0 },
  });
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

async function addMachine(id: string): Promise<number> {
  const { seq } = await store.routing.appendAfterWrite(
    () => store.machines.create(machine(id)),
    (m) => ({ type: 'machine_upserted', machine: m.value, deploy_id: null, at }),
  );
  return seq;
}

describe('follower on a trimmed routing stream', () => {
  it('an edge whose position was trimmed away rebuilds from a new snapshot and says so', async () => {
    await addMachine('m0');
    // The edge takes its snapshot, then falls behind: 6 more events, the stream keeps 3.
    let fellBehind = false;
    const feed: RoutingFeed = {
      snapshot: () => store.routing.snapshot(),
      lastSeq: () => store.routing.lastSeq(),
      async *follow(fromSeq, signal) {
        if (!fellBehind) {
          fellBehind = true;
          for (let i = 1; i <= 6; i++) await addMachine(`m${i}`);
        }
        yield* store.routing.follow(fromSeq, signal);
      },
    };
    const errors: { error: unknown; context: string }[] = [];
    await using follower = createFollower(feed, {
      project: (state: RoutingState) => [...state.machines.keys()].sort(),
      retryDelayMs: 20,
      onError: (error, context) => errors.push({ error, context }),
    });
    follower.start();
    await follower.waitForSeq(7, 10_000);

    const info = await store.jsm.streams.info(store.names.routingEvents);
    expect([info.state.first_seq, info.state.last_seq]).toEqual([5, 7]);
    const broken = errors.find((e) => isPloyzError(e.error, 'ROUTING_FEED_BROKEN'));
    if (broken === undefined) throw new Error(`no ROUTING_FEED_BROKEN among ${errors.length} error(s)`);
    expect(broken.context).toBe('follow');
    expect((broken.error as { details?: { reason?: string } }).details?.reason).toBe('gap');
    expect((broken.error as Error).message).toContain('routing events 2..4 are gone');
    // Rebuilt from the snapshot: every machine, also those whose events were trimmed.
    expect(follower.current()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    expect(follower.freshness()).toMatchObject({ resyncs: 2, appliedSeq: 7, stale: false });

    // And it follows on from there.
    const seq = await addMachine('m7');
    await follower.waitForSeq(seq, 10_000);
    expect(follower.current()).toContain('m7');
  });
});
