import { startNats } from '@ployz/testkit';
import { isPloyzError, type SequencedRoutingEvent } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConnectionState, ensureAssets, openStore, type Store } from '../src/index.ts';
import { AT, instance, machine, release, revision, SCOPE } from './records.fixture.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;

beforeAll(async () => {
  nats = await startNats();
  store = await openStore({ servers: nats.url, ...SCOPE, minBackoffMs: 50, maxBackoffMs: 200 });
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

/** Collects `n` events from follow(fromSeq), or the error that ended it. */
async function take(fromSeq: number, n: number, timeoutMs = 10_000) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const got: SequencedRoutingEvent[] = [];
  try {
    for await (const e of store.routing.follow(fromSeq, ac.signal)) {
      got.push(e);
      if (got.length >= n) break;
    }
    return { got, error: null as unknown };
  } catch (error) {
    return { got, error };
  } finally {
    clearTimeout(timer);
  }
}

describe('routing feed', () => {
  it('snapshot reflects KV records at a sequence; follow yields the later events in order', async () => {
    expect(await store.routing.lastSeq()).toBe(0);
    const empty = await store.routing.snapshot();
    expect(empty).toEqual({ seq: 0, machines: [], revisions: [], releases: [], instances: [] });

    await store.routing.appendAfterWrite(
      () => store.machines.create(machine('m1')),
      (m) => ({ type: 'machine_upserted', machine: m.value, deploy_id: null, at: AT }),
    );
    await store.routing.appendAfterWrite(
      () => store.revisions.create(revision()),
      (r) => ({ type: 'revision_stored', revision: r.value, deploy_id: 'dep-1', at: AT }),
    );
    const snap = await store.routing.snapshot();
    expect(snap.seq).toBe(2);
    expect(snap.machines.map((m) => m.id)).toEqual(['m1']);
    expect(snap.revisions).toHaveLength(1);

    await store.releases.create(release());
    await store.routing.append({ type: 'release_committed', release: release(), deploy_id: 'dep-1', at: AT });
    await store.instances.create(instance());
    await store.routing.append({
      type: 'instance_upserted',
      instance: instance(),
      deploy_id: 'dep-1',
      at: AT,
    });

    const { got, error } = await take(snap.seq, 2);
    expect(error).toBeNull();
    expect(got.map((e) => [e.seq, e.event.type])).toEqual([
      [3, 'release_committed'],
      [4, 'instance_upserted'],
    ]);
    expect(await store.routing.lastSeq()).toBe(4);
  });

  it('follow from a sequence past the end says the stream was reset', async () => {
    const { error } = await take(1000, 1, 2000);
    expect(isPloyzError(error, 'ROUTING_FEED_BROKEN')).toBe(true);
    expect((error as { details?: { reason?: string } }).details?.reason).toBe('stream_reset');
  });

  it('aborting the signal ends follow quietly', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const seen: number[] = [];
    for await (const e of store.routing.follow(4, ac.signal)) seen.push(e.seq);
    expect(seen).toEqual([]);
  });

  it('a nats-server kill breaks follow with a typed error; after restart a new snapshot + follow catches up', async () => {
    const states: ConnectionState[] = [];
    const off = store.connection.onState((s) => states.push(s));
    const ac = new AbortController();
    const seen: number[] = [];
    const following = (async () => {
      try {
        for await (const e of store.routing.follow(4, ac.signal)) seen.push(e.seq);
        return null;
      } catch (err) {
        return err;
      }
    })();
    await store.routing.append({ type: 'machine_removed', machine_id: 'm9', deploy_id: null, at: AT });
    await expect.poll(() => seen, { timeout: 5000 }).toEqual([5]);

    await nats.kill();
    const error = await following;
    expect(isPloyzError(error, 'ROUTING_FEED_BROKEN')).toBe(true);
    await nats.restart();
    await expect.poll(() => store.connection.state, { timeout: 15_000 }).toBe('connected');
    expect(states).toContain('disconnected');
    off();

    // Written while the follower was away.
    await store.instances.update(
      instance(undefined, { ready: false }),
      (await store.instances.get('shop', 'web', 'web-0-a'))?.revision ?? 0,
    );
    await store.routing.append({
      type: 'instance_upserted',
      instance: instance(undefined, { ready: false }),
      deploy_id: 'dep-1',
      at: AT,
    });

    const snap = await store.routing.snapshot();
    expect(snap.seq).toBe(6);
    expect(snap.instances[0]?.ready).toBe(false);
    await store.routing.append({
      type: 'instance_removed',
      instance_id: 'web-0-a',
      deploy_id: 'dep-1',
      at: AT,
    });
    const { got, error: e2 } = await take(snap.seq, 1);
    expect(e2).toBeNull();
    expect(got.map((e) => [e.seq, e.event.type])).toEqual([[7, 'instance_removed']]);
  });

  it('events removed before the follower read them are a gap, not a silent skip', async () => {
    const last = (await store.routing.lastSeq()) ?? 0;
    await store.routing.append({ type: 'machine_removed', machine_id: 'm8', deploy_id: null, at: AT });
    await store.routing.append({ type: 'machine_removed', machine_id: 'm7', deploy_id: null, at: AT });
    // Limits (or an operator) dropped the oldest events of the stream.
    await store.jsm.streams.purge(store.names.routingEvents, { keep: 1 });
    const { got, error } = await take(last, 5, 3000);
    expect(got).toEqual([]);
    expect(isPloyzError(error, 'ROUTING_FEED_BROKEN')).toBe(true);
    expect((error as { details?: { reason?: string } }).details?.reason).toBe('gap');
    // From the surviving event on, following works.
    const ok = await take(last + 1, 1);
    expect(ok.got.map((e) => e.seq)).toEqual([last + 2]);
  });

  it('a routing stream deleted and created again is a reset even when it grew past fromSeq', async () => {
    const snap = await store.routing.snapshot();
    await store.jsm.streams.delete(store.names.routingEvents);
    await ensureAssets(store.nc, SCOPE, 1);
    for (let i = 0; i < snap.seq + 2; i++) {
      await store.routing.append({ type: 'machine_removed', machine_id: `x${i}`, deploy_id: null, at: AT });
    }
    const { error } = await take(snap.seq, 1, 3000);
    expect(isPloyzError(error, 'ROUTING_FEED_BROKEN')).toBe(true);
    expect((error as { details?: { reason?: string } }).details?.reason).toBe('stream_reset');
    // A new snapshot adopts the new stream.
    const again = await store.routing.snapshot();
    expect(again.seq).toBe(snap.seq + 2);
    await store.routing.append({ type: 'machine_removed', machine_id: 'y', deploy_id: null, at: AT });
    expect((await take(again.seq, 1)).got.map((e) => e.seq)).toEqual([again.seq + 1]);
  });
});
