/**
 * The deploy lease at R3 under concurrent contenders (issue 19's Jepsen-style check, the part
 * that needs no fault): three clients, one per server of a real 3-server cluster, race one lease
 * — acquire, hold briefly, release — and the merged history must never show two holders at once.
 */
import { connect } from '@nats-io/transport-node';
import { type LeaseHold, leaseViolations, startNatsCluster } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/index.ts';
import { SCOPE, storeAtR3 } from './records.fixture.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function contend(store: Store, client: string, untilMs: number, holds: LeaseHold[], refused: string[]) {
  while (Date.now() < untilMs) {
    try {
      const lease = await store.leases.acquire('cp.lock.race', { owner: client, ttlMs: 5000 });
      const from = Date.now();
      await sleep(5 + Math.random() * 20);
      const until = Math.min(Date.now(), Date.parse(lease.record.expires_at));
      holds.push({ client, nonce: lease.record.nonce, revision: lease.revision, from, until });
      await store.leases
        .release(lease)
        .catch((err: unknown) => refused.push(`release:${isPloyzError(err) ? err.code : err}`));
    } catch (err) {
      refused.push(`acquire:${isPloyzError(err) ? err.code : String(err)}`);
      await sleep(Math.random() * 5);
    }
  }
}

describe('the lease at R3, three contenders on three servers', () => {
  it('never two holders at once', async () => {
    await using cluster = await startNatsCluster();
    const conns = await Promise.all(cluster.urls.map((url) => connect({ servers: url })));
    try {
      const first = conns[0];
      if (!first) throw new Error('no connection');
      await storeAtR3(first, 5000);
      const stores = await Promise.all(
        conns.map((nc) => Store.fromConnection(nc, { ...SCOPE, replicas: 3, ensure: false })),
      );
      const holds: LeaseHold[] = [];
      const refused: string[] = [];
      const until = Date.now() + 8000;
      await Promise.all(stores.map((s, i) => contend(s, `c${i + 1}`, until, holds, refused)));
      const codes = [...new Set(refused)].sort();
      const violations = leaseViolations(holds);
      console.log(
        `[lease-r3] ${holds.length} holds, ${refused.length} refused (${codes.join(' ')}); ${violations.length} violations`,
      );
      expect(holds.length).toBeGreaterThan(20);
      expect(violations.slice(0, 5)).toEqual([]);
    } finally {
      await Promise.all(conns.map((nc) => nc.close()));
    }
  }, 60_000);
});
