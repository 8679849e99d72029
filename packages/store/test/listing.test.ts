/**
 * Listings at R3 with one member silent (issue 19): a member frozen with SIGSTOP is what a
 * machine cut from the network looks like to the others — no shutdown event, its links just go
 * quiet — and nats-server 2.9 keeps placing ephemeral (R1) consumers on it for minutes. Every
 * listing (a bucket's records, a namespace's commits) still answers, through a consumer the
 * stream's quorum serves.
 */
import { connect } from '@nats-io/transport-node';
import { startNatsCluster } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { commit, deployStatus, storeAtR3 } from './records.fixture.ts';

describe('listings with a silent member', () => {
  it('records and commits listed every time while one of three members is frozen', async () => {
    await using cluster = await startNatsCluster();
    const [first, , frozen] = cluster.servers;
    const nc = await connect({ servers: first?.url ?? '', maxReconnectAttempts: -1 });
    try {
      const store = await storeAtR3(nc, 4000);
      for (let i = 0; i < 3; i++) {
        await store.deployStatus.create(deployStatus(`dep-${i}`));
        await store.commits.append(commit(`dep-${i}.final`, { deploy_id: `dep-${i}` }));
      }
      const pid = frozen?.pid;
      expect(pid).toBeTypeOf('number');
      process.kill(pid as number, 'SIGSTOP');
      try {
        // Both streams' leaders settle on the two live members first (a write to each answers).
        let n = 0;
        await expect
          .poll(
            async () => {
              n++;
              await store.deployStatus.create(deployStatus(`dep-w${n}`));
              await store.commits.append(
                commit(`dep-w${n}.final`, { deploy_id: `dep-w${n}`, namespace: 'blog' }),
              );
              return 'written';
            },
            { timeout: 30_000, interval: 500 },
          )
          .toBe('written');
        const failures: string[] = [];
        const times: number[] = [];
        // Twelve of each: with R1 listing consumers about a third would land on the frozen peer.
        for (let i = 0; i < 12; i++) {
          const t0 = Date.now();
          try {
            const statuses = await store.deployStatus.list();
            expect(statuses.length).toBeGreaterThanOrEqual(3);
            const commits = await store.commits.list('shop');
            expect(commits.length).toBe(3);
          } catch (err) {
            failures.push(err instanceof Error ? err.message : String(err));
          }
          times.push(Date.now() - t0);
        }
        console.log(`listings with a frozen member: ${JSON.stringify(times)} ms ${JSON.stringify(failures)}`);
        expect(failures).toEqual([]);
      } finally {
        process.kill(pid as number, 'SIGCONT');
      }
    } finally {
      await nc.close();
    }
  }, 180_000);
});
