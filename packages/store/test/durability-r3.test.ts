/**
 * R3 durability (issue 19, ADR 0003): every acknowledged commit survives kill -9 of the commit
 * stream leader's nats-server. The acks came from a quorum (2 of 3), so the two survivors elect
 * a new leader that has every acked entry; the killed server catches up when it returns.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsCluster } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/index.ts';
import { commit, SCOPE } from './records.fixture.ts';

describe('durability at R3', () => {
  it('every acknowledged commit survives kill -9 of the stream leader', async () => {
    await using cluster = await startNatsCluster();
    const nc = await connect({ servers: cluster.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    const store = await Store.fromConnection(nc, { ...SCOPE, replicas: 3 });
    try {
      const jsm = await jetstreamManager(nc);
      const leaderName = (await jsm.streams.info(store.commits.stream)).cluster?.leader;
      const leader = cluster.servers.find((_, i) => `s${i + 1}` === leaderName);
      expect(leader, `leader ${leaderName}`).toBeDefined();
      const N = 200;
      const acked: number[] = [];
      // Concurrent appends in flight while the leader dies: only the acknowledged ones count.
      const appends = Array.from({ length: N }, (_, i) =>
        store.commits
          .append(commit(`dep-${i}.final`, { deploy_id: `dep-${i}`, namespace: i % 2 ? 'shop' : 'blog' }))
          .then((r) => {
            acked.push(r.seq);
            if (acked.length === N / 2) void leader?.kill();
          }),
      );
      await Promise.allSettled(appends);
      console.log(`${acked.length} of ${N} appends acknowledged; leader ${leaderName} killed after ${N / 2}`);
      expect(acked.length).toBeGreaterThanOrEqual(N / 2);
      // The survivors elect a new leader; every acked seq is there.
      await expect
        .poll(async () => (await jsm.streams.info(store.commits.stream).catch(() => null))?.cluster?.leader, {
          timeout: 20_000,
        })
        .toMatch(/^s[1-3]$/);
      const newLeader = (await jsm.streams.info(store.commits.stream)).cluster?.leader;
      expect(newLeader).not.toBe(leaderName);
      // Read each acked seq from the new leader (a direct message get, not a consumer that may
      // be placed on the dead replica). Polled while the meta group settles.
      const missing = async () => {
        const out: number[] = [];
        for (const seq of acked) {
          const m = await jsm.streams.getMessage(store.commits.stream, { seq }).catch(() => null);
          if (!m) out.push(seq);
        }
        return out;
      };
      await expect.poll(missing, { timeout: 30_000, interval: 500 }).toEqual([]);
      // The stream ends at or after the last acknowledged seq: an append whose ack was lost when
      // the leader died may still have been stored (never more than the N that were sent).
      const last = await store.commits.lastSeq();
      expect(last).toBeGreaterThanOrEqual(Math.max(...acked));
      expect(last).toBeLessThanOrEqual(N);
      // The killed server comes back and catches up with no manual step.
      await leader?.restart();
      await expect
        .poll(
          async () =>
            (await jsm.streams.info(store.commits.stream)).cluster?.replicas?.every(
              (r) => r.current && !r.offline,
            ),
          { timeout: 20_000 },
        )
        .toBe(true);
    } finally {
      await nc.close();
    }
  }, 120_000);
});
