/**
 * An acknowledged deploy commit survives `kill -9` of nats-server (docs/adr/0003).
 * Appends N commits, kills the server with SIGKILL right after the last ack, restarts it on the
 * same data directory and reads every commit back.
 */
import { connect } from '@nats-io/transport-node';
import { startNats } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/index.ts';
import { commit, SCOPE } from './records.fixture.ts';

describe('durability', () => {
  it('every acknowledged commit is present after kill -9 and restart', async () => {
    await using nats = await startNats();
    const N = 300;
    const first = await Store.fromConnection(await connect({ servers: nats.url, reconnect: false }), SCOPE);
    const acked: number[] = [];
    // Concurrent appends in flight while the server dies: the acked ones must all survive.
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const r = await first.commits.append(
          commit(`dep-${i}.final`, { deploy_id: `dep-${i}`, namespace: i % 2 ? 'shop' : 'blog' }),
        );
        acked.push(r.seq);
      }),
    );
    await nats.kill();
    await first.connection.nc.close().catch(() => {});
    expect(acked).toHaveLength(N);

    await nats.restart();
    const second = await Store.fromConnection(await connect({ servers: nats.url }), SCOPE);
    try {
      expect(await second.commits.lastSeq()).toBe(N);
      const all = [...(await second.commits.list('shop')), ...(await second.commits.list('blog'))];
      expect(all).toHaveLength(N);
      expect(new Set(all.map((c) => c.seq))).toEqual(new Set(acked));
      // A KV write acknowledged just before a kill survives as well.
      const lease = await second.leases.acquire(second.deployLockKey('shop'), { owner: 'a', ttlMs: 60_000 });
      await nats.kill();
      await nats.restart();
      await expect
        .poll(async () => (await second.leases.holder(lease.key).catch(() => null))?.nonce, {
          timeout: 15_000,
        })
        .toBe(lease.record.nonce);
    } finally {
      await second.close();
    }
  });
});
