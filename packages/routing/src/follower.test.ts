import { describe, expect, it } from 'vitest';
import { httpRoute, instance, machine, REV_A, release, revision } from '../test/records.ts';
import { createFollower } from './follower.ts';
import { MemoryRoutingFeed } from './memory-feed.ts';
import { matchRoute } from './route-match.ts';
import { projectRoutes } from './route-table.ts';
import type { RoutingState } from './state.ts';

function seededFeed(): MemoryRoutingFeed {
  return new MemoryRoutingFeed({
    machines: [machine('m1')],
    revisions: [revision(REV_A, 'web', [httpRoute(['example.com'])])],
    releases: [release('web', REV_A, [{ slot: 0, instance: 'web-0' }])],
    instances: [instance('web-0', 'web', 0, REV_A)],
  });
}

const at = '2026-01-01T00:00:00Z';

describe('createFollower', () => {
  it('loads a snapshot, then applies ordered events and swaps in new tables', async () => {
    const feed = seededFeed();
    await using follower = createFollower(feed, { project: projectRoutes, pollIntervalMs: 20 });
    expect(follower.freshness()).toMatchObject({ loaded: false, stale: true });
    follower.start();
    await follower.waitForSeq(0, 2000);
    const first = follower.current();
    expect(first && matchRoute(first, 'example.com', '/')?.backends).toHaveLength(1);

    const seq = feed.publish({
      type: 'instance_upserted',
      instance: instance('web-0', 'web', 0, REV_A, { draining: true }),
      deploy_id: null,
      at,
    });
    await follower.waitForSeq(seq, 2000);
    const second = follower.current();
    expect(second).not.toBe(first);
    expect(second && matchRoute(second, 'example.com', '/')?.backends).toHaveLength(0);
    // The earlier table is immutable: readers holding it still see the old backends.
    expect(first && matchRoute(first, 'example.com', '/')?.backends).toHaveLength(1);
    expect(follower.freshness()).toMatchObject({ loaded: true, appliedSeq: seq, stale: false, reason: null });
  });

  it('keeps the last good view and reports stale when a rebuild fails, then recovers', async () => {
    const feed = seededFeed();
    let failing = false;
    const errors: string[] = [];
    await using follower = createFollower(feed, {
      project: (state: RoutingState) => {
        if (failing) throw new Error('boom');
        return projectRoutes(state);
      },
      onError: (_e, ctx) => errors.push(ctx),
    });
    follower.start();
    await follower.waitForSeq(0, 2000);
    const good = follower.current();
    failing = true;
    feed.publish({ type: 'machine_upserted', machine: machine('m2'), deploy_id: null, at });
    await expect.poll(() => follower.freshness().rebuildFailures).toBe(1);
    expect(follower.current()).toBe(good);
    expect(follower.freshness()).toMatchObject({ stale: true, appliedSeq: 0 });
    expect(follower.freshness().reason).toContain('projection rebuild failed at seq 1: boom');
    expect(errors).toContain('rebuild');

    failing = false;
    const seq = feed.publish({ type: 'machine_removed', machine_id: 'm2', deploy_id: null, at });
    await follower.waitForSeq(seq, 2000);
    expect(follower.freshness()).toMatchObject({ stale: false, appliedSeq: 2 });
  });

  it('serves the last view while the store is down and catches up when it returns', async () => {
    const feed = seededFeed();
    await using follower = createFollower(feed, {
      project: projectRoutes,
      pollIntervalMs: 10,
      retryDelayMs: 10,
      maxRetryDelayMs: 20,
    });
    follower.start();
    await follower.waitForSeq(0, 2000);
    const before = follower.current();

    feed.setUnavailable(true);
    await expect.poll(() => follower.freshness().stale).toBe(true);
    expect(follower.current()).toBe(before);
    expect(follower.freshness().reason).toMatch(/unreachable|STORE_UNAVAILABLE/);

    // Events committed while we were cut off arrive through a fresh snapshot.
    feed.setUnavailable(false);
    const seq = feed.publish({
      type: 'release_removed',
      namespace: 'default',
      service: 'web',
      deploy_id: null,
      at,
    });
    await follower.waitForSeq(seq, 2000);
    await expect.poll(() => follower.freshness().stale).toBe(false);
    const after = follower.current();
    expect(after && matchRoute(after, 'example.com', '/')).toBeUndefined();
    expect(follower.freshness().resyncs).toBeGreaterThanOrEqual(2);
  });

  it('publishes the first view after a resync as fresh, not with the old feed failure', async () => {
    const feed = seededFeed();
    await using follower = createFollower(feed, {
      project: projectRoutes,
      retryDelayMs: 10,
      maxRetryDelayMs: 20,
    });
    follower.start();
    await follower.waitForSeq(0, 2000);
    feed.setUnavailable(true);
    await expect.poll(() => follower.freshness().stale).toBe(true);
    const seen: boolean[] = [];
    follower.onUpdate((_view, freshness) => seen.push(freshness.stale));
    feed.setUnavailable(false);
    await expect.poll(() => seen.length).toBeGreaterThan(0);
    expect(seen[0]).toBe(false);
  });

  it('reports stale when the view stays behind the stream too long', async () => {
    let now = 1_000;
    const feed = seededFeed();
    const blocked = { value: false };
    await using follower = createFollower(feed, {
      project: (s: RoutingState) => {
        if (blocked.value) throw new Error('stuck');
        return projectRoutes(s);
      },
      maxLagMs: 100,
      pollIntervalMs: 10,
      now: () => now,
    });
    follower.start();
    await follower.waitForSeq(0, 2000);
    blocked.value = true;
    feed.publish({ type: 'machine_upserted', machine: machine('m3'), deploy_id: null, at });
    await expect.poll(() => follower.freshness().lag).toBe(1);
    now += 500;
    expect(follower.freshness().reason).toContain('behind the stream by 1 events');
  });

  it('waitForSeq rejects after its timeout', async () => {
    await using follower = createFollower(seededFeed(), { project: projectRoutes });
    follower.start();
    await expect(follower.waitForSeq(99, 50)).rejects.toThrow(/did not reach seq 99/);
  });
});
