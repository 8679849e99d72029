/** Asset replication as status shows it, on a real standalone server and a real 3-server cluster. */
import { connect } from '@nats-io/transport-node';
import { startNats, startNatsCluster } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { assetReplication, Store, storeReplication } from '../src/index.ts';
import { SCOPE } from './records.fixture.ts';

describe('assetReplication (pure)', () => {
  it('the leader and current followers are current; an offline or behind one is lagging', () => {
    const view = assetReplication('cp_locks_a', {
      config: { num_replicas: 3 } as never,
      cluster: {
        name: 'c',
        leader: 's1',
        replicas: [
          { name: 's2', current: true, offline: false, active: 2_000_000, lag: 0 },
          { name: 's3', current: false, offline: true, active: 9_000_000_000, lag: 12 },
        ],
      } as never,
    });
    expect(view).toEqual({
      asset: 'cp_locks_a',
      replicas: 3,
      leader: 's1',
      current: ['s1', 's2'],
      lagging: [{ server: 's3', lag: 12, active_ms: 9000 }],
    });
  });
});

describe('storeReplication (real nats-server)', () => {
  it('R1 on a standalone server; R3 on a cluster with every replica current', async () => {
    await using one = await startNats();
    const nc1 = await connect({ servers: one.url });
    try {
      await Store.fromConnection(nc1, SCOPE);
      const r1 = await storeReplication(nc1, SCOPE);
      expect(r1.replicas).toBe(1);
      expect(r1.assets.length).toBeGreaterThan(5);
      expect(r1.assets.every((a) => a.lagging.length === 0 && a.replicas === 1)).toBe(true);
    } finally {
      await nc1.close();
    }
    await using three = await startNatsCluster();
    const nc3 = await connect({ servers: three.urls });
    try {
      await Store.fromConnection(nc3, { ...SCOPE, replicas: 3 });
      await expect
        .poll(async () => (await storeReplication(nc3, SCOPE)).assets.map((a) => a.current.length), {
          timeout: 15_000,
        })
        .toEqual((await storeReplication(nc3, SCOPE)).assets.map(() => 3));
      const r3 = await storeReplication(nc3, SCOPE);
      expect(r3.replicas).toBe(3);
      expect(r3.leader).toMatch(/^s[123]$/);
    } finally {
      await nc3.close();
    }
  }, 60_000);
});
