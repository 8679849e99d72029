import type { RoutingEvent, RoutingSnapshot } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { httpRoute, instance, machine, release, revision } from '../test/records.ts';
import { createFollower } from './follower.ts';
import { IncrementalRoutes } from './incremental-routes.ts';
import { MemoryRoutingFeed } from './memory-feed.ts';
import { projectRoutes, type RouteTable } from './route-table.ts';
import { ProjectionState } from './state.ts';

const AT = '2026-01-01T00:00:00Z';
const base = { deploy_id: null, at: AT };

/** mulberry32: a small seeded PRNG, so a failing sequence can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVICES = ['s0', 's1', 's2', 's3', 's4'];
const MACHINES = ['m1', 'm2', 'm3'];
const HOSTS = ['a.test', 'b.test', '*.b.test', 'c.test', '*.test'];
const PATHS = ['/', '/api', '/api/v1'];

function revId(service: string, n: number): string {
  return `rev-${service.padEnd(2, '0')}${String(n).padStart(14, '0')}`;
}

/** One random event over a small universe, so events keep hitting the same records. */
function randomEvent(next: () => number): RoutingEvent {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  // mostly m1, so instances and release slots often agree and routes get backends
  const pickMachine = () => (next() < 0.75 ? 'm1' : pick(MACHINES));
  const service = pick(SERVICES);
  const rev = revId(service, Math.floor(next() * 2));
  const instanceId = `${service}-${Math.floor(next() * 3)}-${Math.floor(next() * 2)}`;
  const slotOf = (id: string) => Number(id.split('-')[1]);
  switch (Math.floor(next() * 8)) {
    case 0:
      return {
        type: 'machine_upserted',
        machine: machine(pickMachine(), { lifecycle: next() < 0.2 ? 'removed' : 'active' }),
        ...base,
      };
    case 1:
      if (next() < 0.5) return randomEvent(next);
      return { type: 'machine_removed', machine_id: pick(MACHINES), ...base };
    case 2: {
      const routes = Array.from({ length: 1 + Math.floor(next() * 2) }, () =>
        httpRoute([pick(HOSTS), pick(HOSTS)], pick(PATHS), next() < 0.8 ? 'http' : 'admin'),
      );
      return { type: 'revision_stored', revision: revision(rev, service, routes), ...base };
    }
    case 3: {
      const slots = [0, 1, 2]
        .filter(() => next() < 0.7)
        .map((slot) => ({
          slot,
          instance: `${service}-${slot}-${Math.floor(next() * 2)}`,
          machine: pick(MACHINES),
        }));
      return { type: 'release_committed', release: release(service, rev, slots), ...base };
    }
    case 4:
      if (next() < 0.5) return randomEvent(next);
      return { type: 'release_removed', namespace: 'default', service, ...base };
    case 6:
      return { type: 'instance_removed', instance_id: instanceId, ...base };
    default:
      return {
        type: 'instance_upserted',
        instance: instance(instanceId, service, slotOf(instanceId), rev, {
          machine: pickMachine(),
          ready: next() < 0.8,
          draining: next() < 0.1,
          state: next() < 0.9 ? 'running' : 'stopped',
          ip: next() < 0.9 ? `10.0.0.${Math.floor(next() * 250)}` : null,
          ports: next() < 0.8 ? { http: 8080 } : { admin: 9000, http: 8081 },
        }),
        ...base,
      };
  }
}

function plain(table: RouteTable) {
  return {
    seq: table.seq,
    exact: [...table.exact.entries()],
    wildcard: [...table.wildcard.entries()],
    routeCount: table.routeCount,
    backendCount: table.backendCount,
    conflicts: table.conflicts,
  };
}

describe('IncrementalRoutes', () => {
  for (const seed of [1, 2, 3, 42, 2026]) {
    it(`equals the full projection after every event burst (seed ${seed})`, () => {
      const next = rng(seed);
      const state = new ProjectionState();
      const incremental = new IncrementalRoutes();
      expect(plain(incremental.full(state))).toEqual(plain(projectRoutes(state)));
      let seq = 0;
      let sawBackends = 0;
      let sawConflicts = 0;
      for (let step = 0; step < 800; step++) {
        const burst = Array.from({ length: 1 + Math.floor(next() * 3) }, () => randomEvent(next));
        for (const event of burst) state.apply(event, ++seq);
        const got = incremental.update(state, burst);
        const want = projectRoutes(state);
        expect(plain(got), `seed ${seed} step ${step}: ${JSON.stringify(burst)}`).toEqual(plain(want));
        if (want.backendCount > 0) sawBackends += 1;
        if (want.conflicts.length > 0) sawConflicts += 1;
      }
      // the sequence exercised real tables, not just empty ones
      expect(sawBackends).toBeGreaterThan(40);
      expect(sawConflicts).toBeGreaterThan(10);
    });
  }

  it('recomputes only the release an instance event touches', () => {
    const snapshot: RoutingSnapshot = {
      seq: 1,
      machines: [machine('m1')],
      revisions: [],
      releases: [],
      instances: [],
    };
    for (let s = 0; s < 200; s++) {
      const rev = revId(`x${s}`, 0);
      const insts = [0, 1].map((slot) => instance(`x${s}-${slot}`, `x${s}`, slot, rev));
      snapshot.revisions.push(revision(rev, `x${s}`, [httpRoute([`x${s}.test`])]));
      snapshot.releases.push(
        release(
          `x${s}`,
          rev,
          insts.map((i) => ({ slot: i.slot, instance: i.id })),
        ),
      );
      snapshot.instances.push(...insts);
    }
    const state = ProjectionState.fromSnapshot(snapshot);
    const incremental = new IncrementalRoutes();
    const before = incremental.full(state);
    const changed = instance('x7-1', 'x7', 1, revId('x7', 0), { ready: false });
    const event: RoutingEvent = { type: 'instance_upserted', instance: changed, ...base };
    state.apply(event, 2);
    const after = incremental.update(state, [event]);
    expect(incremental.lastRecomputed).toBe(1);
    expect(after.exact.get('x7.test')?.[0]?.backends.map((b) => b.instance)).toEqual(['x7-0']);
    // untouched releases keep their route objects (cheap swap, stable round robin)
    expect(after.exact.get('x8.test')?.[0]).toBe(before.exact.get('x8.test')?.[0]);
    expect(plain(after)).toEqual(plain(projectRoutes(state)));
    // a machine event reaches every release with an instance on it
    const gone: RoutingEvent = { type: 'machine_removed', machine_id: 'm1', ...base };
    state.apply(gone, 3);
    const empty = incremental.update(state, [gone]);
    expect(incremental.lastRecomputed).toBe(200);
    expect(empty.backendCount).toBe(0);
  });
});

describe('follower with an incremental projection', () => {
  it('applies events incrementally and falls back to a full rebuild when update throws', async () => {
    const rev = revId('web', 0);
    const i0 = instance('web-0', 'web', 0, rev);
    const feed = new MemoryRoutingFeed({
      machines: [machine('m1')],
      revisions: [revision(rev, 'web', [httpRoute(['web.test'])])],
      releases: [release('web', rev, [{ slot: 0, instance: 'web-0' }])],
      instances: [i0],
    });
    const incremental = new IncrementalRoutes();
    let failNext = false;
    const errors: string[] = [];
    const follower = createFollower<RouteTable>(feed, {
      project: projectRoutes,
      incremental: {
        full: (state) => incremental.full(state),
        update: (state, events) => {
          if (failNext) {
            failNext = false;
            throw new Error('boom');
          }
          return incremental.update(state, events);
        },
      },
      onError: (error, context) => errors.push(`${context}: ${(error as Error).message}`),
    });
    follower.start();
    try {
      await follower.waitForSeq(0, 5000);
      expect(follower.freshness().fullRebuilds).toBe(1);
      const i1 = instance('web-1', 'web', 1, rev);
      feed.publish({ type: 'instance_upserted', instance: i1, ...base });
      const seq = feed.publish({
        type: 'release_committed',
        release: release('web', rev, [
          { slot: 0, instance: 'web-0' },
          { slot: 1, instance: 'web-1' },
        ]),
        ...base,
      });
      await follower.waitForSeq(seq, 5000);
      expect(follower.current()?.backendCount).toBe(2);
      expect(follower.freshness().fullRebuilds).toBe(1);

      failNext = true;
      const seq2 = feed.publish({ type: 'instance_removed', instance_id: 'web-1', ...base });
      await follower.waitForSeq(seq2, 5000);
      expect(follower.current()?.backendCount).toBe(1);
      expect(follower.freshness()).toMatchObject({ fullRebuilds: 2, rebuildFailures: 0, stale: false });
      expect(errors).toEqual(['rebuild: boom']);
    } finally {
      await follower.stop();
    }
  });
});
