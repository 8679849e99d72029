import { openStore, type Store } from '@ployz/store';
import { startNats } from '@ployz/testkit';
import type { InstanceRecord } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import {
  instance,
  machine,
  release,
  request,
  revision,
  runGateway,
  startBackend,
  testConfig,
} from './harness.ts';

const at = '2026-01-01T00:00:00Z';
let revisionCounter = 0x100;

/** What the deploy engine does at commit: KV writes, then the routing events describing them. */
async function deployService(store: Store, service: string, host: string, port: number): Promise<number> {
  revisionCounter += 1;
  const rev = revision(
    service,
    [{ hostnames: [host] }],
    `rev-${revisionCounter.toString(16).padStart(16, '0')}`,
  );
  const inst: InstanceRecord = instance(`${service}-0`, service, 0, port, rev.id);
  await store.routing.appendAfterWrite(
    () => store.revisions.create(rev),
    () => ({ type: 'revision_stored', revision: rev, deploy_id: null, at }),
  );
  await store.routing.appendAfterWrite(
    () => store.instances.create(inst),
    () => ({ type: 'instance_upserted', instance: inst, deploy_id: null, at }),
  );
  const rel = release(service, [inst], rev.id);
  const { seq } = await store.routing.appendAfterWrite(
    () => store.releases.create(rel),
    () => ({ type: 'release_committed', release: rel, deploy_id: null, at }),
  );
  return seq;
}

describe('gateway on a real nats-server', () => {
  it('serves committed routes, keeps serving while NATS is down (stale), catches up after', async () => {
    await using nats = await startNats();
    const scope = { installation: 'gwtest', authority: 'auth-gwtest' };
    const store = await openStore({ servers: nats.url, ...scope });
    try {
      await using web = await startBackend('web');
      const m = machine();
      await store.routing.appendAfterWrite(
        () => store.machines.create(m),
        () => ({ type: 'machine_upserted', machine: m, deploy_id: null, at }),
      );
      // One service committed before the gateway starts: it comes from the snapshot.
      await deployService(store, 'before', 'before.test', web.port);

      await using g = await runGateway(
        undefined,
        testConfig({ natsUrl: nats.url, ...scope, maxLagMs: 1000 }),
      );
      await expect
        .poll(async () => (await request(g.url, { host: 'before.test' })).status, { timeout: 10_000 })
        .toBe(200);

      // An event after start is served without a restart.
      const seq = await deployService(store, 'after', 'after.test', web.port);
      await g.gateway.follower.waitForSeq(seq, 5000);
      expect((await request(g.url, { host: 'after.test' })).status).toBe(200);
      expect((await request(g.admin, { path: '/_ployz/health' })).status).toBe(200);

      // NATS dies: the last table keeps serving and health says stale, with why.
      await nats.kill();
      await expect
        .poll(async () => (await request(g.admin, { path: '/_ployz/health' })).status, { timeout: 15_000 })
        .toBe(503);
      const health = JSON.parse((await request(g.admin, { path: '/_ployz/health' })).body);
      expect(health.status).toBe('stale');
      expect(health.reason).toMatch(/unreachable|feed/);
      expect((await request(g.url, { host: 'after.test' })).status).toBe(200);

      // NATS is back: a change committed now is served, health recovers, no restart.
      await nats.restart();
      let seq2 = 0;
      // The writer's own connection reconnects with backoff; retry its commit until NATS answers.
      for (let attempt = 0; seq2 === 0; attempt++) {
        try {
          seq2 = await deployService(store, `later-${attempt}`, 'later.test', web.port);
        } catch (error) {
          if (attempt > 20) throw error;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      await g.gateway.follower.waitForSeq(seq2, 20_000);
      expect((await request(g.url, { host: 'later.test' })).status).toBe(200);
      await expect
        .poll(async () => (await request(g.admin, { path: '/_ployz/health' })).status, { timeout: 15_000 })
        .toBe(200);
    } finally {
      await store.close();
    }
  }, 90_000);
});
