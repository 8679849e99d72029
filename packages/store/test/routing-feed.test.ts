import { startNats } from '@ployz/testkit';
import { isPloyzError, type SequencedRoutingEvent } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConnectionState,
  DEFAULT_ROUTING_RETENTION,
  ensureAssets,
  openStore,
  routingRetentionFromEnv,
  type Store,
} from '../src/index.ts';
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

  it('appendAll stores a batch in the order given; an invalid event sends none of it', async () => {
    const last = (await store.routing.lastSeq()) ?? 0;
    const ids = Array.from({ length: 50 }, (_, i) => `batch-${i}`);
    const seqs = await store.routing.appendAll(
      ids.map((machine_id) => ({ type: 'machine_removed', machine_id, deploy_id: null, at: AT }) as const),
    );
    expect(seqs).toEqual(ids.map((_, i) => last + 1 + i));
    const { got, error } = await take(last, ids.length);
    expect(error).toBeNull();
    expect(got.map((e) => (e.event.type === 'machine_removed' ? e.event.machine_id : e.event.type))).toEqual(
      ids,
    );

    const bad = { type: 'machine_removed', machine_id: '', deploy_id: null, at: 'not a time' } as const;
    const good = { type: 'machine_removed', machine_id: 'kept-out', deploy_id: null, at: AT } as const;
    await expect(store.routing.appendAll([good, bad])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await store.routing.lastSeq()).toBe(last + ids.length);
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

describe('routing event retention', () => {
  const scope = { installation: 'trim', authority: 'auth-trim' } as const;

  it('keeps max_msgs events (configurable, applied to an existing stream); a follower behind the trim gets a gap and a new snapshot carries on', async () => {
    const small = await openStore({
      servers: nats.url,
      ...scope,
      routingRetention: { maxMsgs: 5, maxAgeMs: 0 },
    });
    try {
      const name = small.names.routingEvents;
      expect((await small.jsm.streams.info(name)).config).toMatchObject({ max_msgs: 5, max_age: 0 });
      const snap = await small.routing.snapshot();
      for (let i = 0; i < 8; i++) {
        await small.routing.appendAfterWrite(
          () => small.machines.create(machine(`t${i}`)),
          (m) => ({ type: 'machine_upserted', machine: m.value, deploy_id: null, at: AT }),
        );
      }
      const state = (await small.jsm.streams.info(name)).state;
      expect([state.first_seq, state.last_seq, state.messages]).toEqual([snap.seq + 4, snap.seq + 8, 5]);
      // The follower that stopped at the old snapshot cannot continue: a gap, never a silent skip.
      const ac = new AbortController();
      const error = await (async () => {
        for await (const _ of small.routing.follow(snap.seq, ac.signal)) ac.abort();
      })().catch((e: unknown) => e);
      expect(isPloyzError(error, 'ROUTING_FEED_BROKEN')).toBe(true);
      expect((error as { details?: { reason?: string } }).details?.reason).toBe('gap');
      expect((error as Error).message).toContain('rebuild the projection from a new snapshot');
      // The rebuild: a new snapshot has every machine, including those whose events were trimmed.
      const again = await small.routing.snapshot();
      expect(again.seq).toBe(snap.seq + 8);
      expect(again.machines.map((m) => m.id).sort()).toEqual([
        't0',
        't1',
        't2',
        't3',
        't4',
        't5',
        't6',
        't7',
      ]);
    } finally {
      await small.close();
    }
    // Opening with another policy updates the existing stream (and trims it now).
    const smaller = await openStore({
      servers: nats.url,
      ...scope,
      routingRetention: { maxMsgs: 2, maxAgeMs: 600_000 },
    });
    try {
      const info = await smaller.jsm.streams.info(smaller.names.routingEvents);
      expect(info.config).toMatchObject({ max_msgs: 2, max_age: 600_000 * 1_000_000 });
      expect(info.state.messages).toBe(2);
    } finally {
      await smaller.close();
    }
    // An opener that passes no policy leaves the configured one alone.
    const plain = await openStore({ servers: nats.url, ...scope });
    try {
      const info = await plain.jsm.streams.info(plain.names.routingEvents);
      expect(info.config).toMatchObject({ max_msgs: 2, max_age: 600_000 * 1_000_000 });
    } finally {
      await plain.close();
    }
  });

  it('defaults to a bounded stream, also for a stream created without limits; env configures it', async () => {
    const name = store.names.routingEvents;
    const bounded = {
      max_msgs: DEFAULT_ROUTING_RETENTION.maxMsgs,
      max_age: DEFAULT_ROUTING_RETENTION.maxAgeMs * 1_000_000,
    };
    expect((await store.jsm.streams.info(name)).config).toMatchObject(bounded);
    const cfg = (await store.jsm.streams.info(name)).config;
    await store.jsm.streams.update(name, { ...cfg, max_msgs: -1, max_age: 0 });
    await ensureAssets(store.nc, SCOPE, 1);
    expect((await store.jsm.streams.info(name)).config).toMatchObject(bounded);

    expect(routingRetentionFromEnv({})).toBeUndefined();
    expect(routingRetentionFromEnv({ PLOYZ_ROUTING_EVENTS_MAX_MSGS: '500' })).toEqual({
      maxMsgs: 500,
      maxAgeMs: DEFAULT_ROUTING_RETENTION.maxAgeMs,
    });
    expect(
      routingRetentionFromEnv({ PLOYZ_ROUTING_EVENTS_MAX_MSGS: '0', PLOYZ_ROUTING_EVENTS_MAX_AGE_MS: '0' }),
    ).toEqual({ maxMsgs: 0, maxAgeMs: 0 });
    expect(() => routingRetentionFromEnv({ PLOYZ_ROUTING_EVENTS_MAX_AGE_MS: 'soon' })).toThrow(/maxAgeMs/);
    await expect(ensureAssets(store.nc, SCOPE, 1, { maxMsgs: -1, maxAgeMs: 0 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    // A max age under the stream's 2 min duplicate window is refused before nats-server sees it.
    await expect(ensureAssets(store.nc, SCOPE, 1, { maxMsgs: 10, maxAgeMs: 1000 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
