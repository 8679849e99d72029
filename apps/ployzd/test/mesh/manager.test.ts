/**
 * MeshManager over an in-memory routing feed and an in-memory wg0 + host table (the same diff
 * functions as the real shell): one machine → no peers and no change; a machine joining,
 * moving and leaving is applied from the routing events; a restarted manager finds the mesh
 * converged and changes nothing; wg0 with another key is left alone.
 */
import { MemoryRoutingFeed } from '@ployz/routing';
import type { MachineRecord } from '@ployz/types';
import { afterEach, describe, expect, it } from 'vitest';
import { type MeshEvent, MeshManager, type MeshTargets } from '../../src/mesh/manager.ts';
import { type LivePeer, peerChanges } from '../../src/mesh/peers.ts';
import { type LiveRoute, routeChanges } from '../../src/mesh/routes.ts';
import { machineRecord, wireguardKeys } from './keys.ts';

/** wg0 and the host's mesh routes in memory, changed only through the diff, like the real ones. */
class FakeMesh implements MeshTargets {
  publicKey: string;
  peers: LivePeer[] = [];
  hostTable: LiveRoute[] = [];
  constructor(publicKey: string) {
    this.publicKey = publicKey;
  }
  async readPublicKey() {
    return this.publicKey;
  }
  async apply(desired: Parameters<MeshTargets['apply']>[0]) {
    const changes = peerChanges(this.peers, desired);
    this.peers = desired.map((p) => ({
      publicKey: p.publicKey,
      endpoint: p.endpoint,
      allowedIps: p.allowedIps,
      latestHandshake: 0,
      persistentKeepalive: p.persistentKeepalive,
    }));
    return { publicKey: this.publicKey, peers: changes, routes: { replaced: [], removed: [] } };
  }
  async hostRoutes(subnets: readonly string[]) {
    const changes = routeChanges(this.hostTable, { via: '10.210.1.2' }, subnets);
    this.hostTable = subnets.map((dst) => ({ dst, dev: 'br', gateway: '10.210.1.2' }));
    return changes;
  }
}

const keys = [wireguardKeys(), wireguardKeys(), wireguardKeys()];
const record = (n: number, over: Partial<MachineRecord> = {}) =>
  machineRecord(`m${n}`, keys[n - 1]?.publicKey ?? '', {
    overlay_ip: `fd70:6c6f:797a:${n}:0:0:0:1`,
    subnet: `10.210.${n}.0/24`,
    endpoints: [`10.232.0.${n}:51820`],
    ...over,
  });
const AT = '2026-12-01T00:00:00.000Z';

function start(feed: MemoryRoutingFeed, mesh: FakeMesh) {
  const events: MeshEvent[] = [];
  const waiters: (() => void)[] = [];
  const abort = new AbortController();
  const manager = new MeshManager({
    self: record(1),
    feed: () => feed,
    targets: mesh,
    onEvent: (e) => {
      events.push(e);
      for (const w of waiters.splice(0)) w();
    },
    resyncMs: 0,
  });
  const running = manager.run(abort.signal);
  /** Resolves with the n-th event (1-based) once it is reported. */
  const nth = async (n: number): Promise<MeshEvent> => {
    while (events.length < n) await new Promise<void>((r) => waiters.push(r));
    const event = events[n - 1];
    if (event === undefined) throw new Error('unreachable');
    return event;
  };
  const stop = async () => {
    abort.abort();
    await running;
  };
  return { nth, stop, events };
}

describe('MeshManager', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  it('on a single machine applies no peers and changes nothing', async () => {
    const mesh = new FakeMesh(record(1).public_key);
    const run = start(new MemoryRoutingFeed({ machines: [record(1)] }), mesh);
    stops.push(run.stop);
    expect(await run.nth(1)).toEqual({
      kind: 'applied',
      peers: [],
      wireguard: { publicKey: record(1).public_key, peers: [], routes: { replaced: [], removed: [] } },
      host: { replaced: [], removed: [] },
    });
    expect(mesh.peers).toEqual([]);
  });

  it('follows machines joining, moving and leaving; a restarted manager changes nothing', async () => {
    const feed = new MemoryRoutingFeed({ machines: [record(1), record(2)] });
    const mesh = new FakeMesh(record(1).public_key);
    const first = start(feed, mesh);
    stops.push(first.stop);
    expect(await first.nth(1)).toMatchObject({
      kind: 'applied',
      peers: ['m2'],
      host: { replaced: ['10.210.2.0/24'] },
    });

    feed.publish({ type: 'machine_upserted', machine: record(3), deploy_id: null, at: AT });
    expect(await first.nth(2)).toMatchObject({
      peers: ['m2', 'm3'],
      wireguard: { peers: [{ kind: 'add', peer: { machineId: 'm3' } }] },
    });

    feed.publish({
      type: 'machine_upserted',
      machine: record(2, { endpoints: ['10.232.0.22:51820'] }),
      deploy_id: null,
      at: AT,
    });
    expect(await first.nth(3)).toMatchObject({
      wireguard: { peers: [{ kind: 'update', reasons: ['endpoint'] }] },
      host: { replaced: [], removed: [] },
    });

    feed.publish({ type: 'machine_removed', machine_id: 'm3', deploy_id: null, at: AT });
    expect(await first.nth(4)).toMatchObject({
      peers: ['m2'],
      wireguard: { peers: [{ kind: 'remove', publicKey: record(3).public_key }] },
      host: { removed: ['10.210.3.0/24'] },
    });
    expect(mesh.peers.map((p) => [p.publicKey, p.endpoint])).toEqual([
      [record(2).public_key, '10.232.0.22:51820'],
    ]);
    await first.stop();

    // ployzd restarts: the same records against the same wg0 and host table apply nothing.
    const second = start(feed, mesh);
    stops.push(second.stop);
    expect(await second.nth(1)).toMatchObject({
      kind: 'applied',
      peers: ['m2'],
      wireguard: { peers: [] },
      host: { replaced: [], removed: [] },
    });
  });

  it('leaves wg0 alone when it carries another key than the machine record', async () => {
    const mesh = new FakeMesh(wireguardKeys().publicKey);
    const run = start(new MemoryRoutingFeed({ machines: [record(1), record(2)] }), mesh);
    stops.push(run.stop);
    expect(await run.nth(1)).toEqual({
      kind: 'key_mismatch',
      expected: record(1).public_key,
      actual: mesh.publicKey,
    });
    expect(mesh.peers).toEqual([]);
  });

  it('reports a failed pass and retries from a new snapshot', async () => {
    const feed = new MemoryRoutingFeed({ machines: [record(1), record(2)] });
    feed.setUnavailable(true);
    const mesh = new FakeMesh(record(1).public_key);
    const events: MeshEvent[] = [];
    const abort = new AbortController();
    const running = new MeshManager({
      self: record(1),
      feed: () => feed,
      targets: mesh,
      onEvent: (e) => {
        events.push(e);
        if (e.kind === 'error') feed.setUnavailable(false);
        if (e.kind === 'applied') abort.abort();
      },
      retryMs: 1,
      resyncMs: 0,
    }).run(abort.signal);
    await running;
    expect(events.map((e) => e.kind)).toEqual(['error', 'applied']);
    expect(mesh.peers.map((p) => p.publicKey)).toEqual([record(2).public_key]);
  });
  it('applies the known peers before the store answers, then follows the store and keeps what it applied', async () => {
    const feed = new MemoryRoutingFeed({ machines: [record(1), record(3)] });
    let reachable = false;
    const mesh = new FakeMesh(record(1).public_key);
    const applied: string[][] = [];
    const events: MeshEvent[] = [];
    const waiters: (() => void)[] = [];
    const abort = new AbortController();
    const running = new MeshManager({
      self: record(1),
      // The store answers only once wg0 carries the known peer (a member reaches it through wg0).
      feed: () => (reachable ? feed : null),
      known: [record(1), record(2)],
      onApplied: async (machines) => {
        applied.push(machines.map((m) => m.id).sort());
      },
      targets: mesh,
      onEvent: (e) => {
        events.push(e);
        for (const w of waiters.splice(0)) w();
      },
      retryMs: 1,
      resyncMs: 0,
    }).run(abort.signal);
    const nth = async (n: number) => {
      while (events.length < n) await new Promise<void>((r) => waiters.push(r));
      return events[n - 1];
    };
    try {
      expect(await nth(1)).toMatchObject({ kind: 'applied', peers: ['m2'] });
      expect(mesh.peers.map((p) => p.publicKey)).toEqual([record(2).public_key]);
      reachable = true;
      // The store's records replace the known ones: m2 left while this machine was away, m3 came.
      expect(await nth(2)).toMatchObject({ kind: 'applied', peers: ['m3'] });
      expect(mesh.peers.map((p) => p.publicKey)).toEqual([record(3).public_key]);
      expect(applied).toEqual([
        ['m1', 'm2'],
        ['m1', 'm3'],
      ]);
    } finally {
      abort.abort();
      await running;
    }
  });
});
