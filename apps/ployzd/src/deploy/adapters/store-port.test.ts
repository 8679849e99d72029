/**
 * The DeployStore contract on the real store (nats-server) and on the memory fake the engine's
 * unit tests use: every KV write is compare-and-set at the revision the writer read, so of two
 * writers racing from one read exactly one wins and the other gets STORE_CONFLICT.
 */
import { deployId } from '@ployz/identity';
import { openStore, type PromotionRecord, promotionRecords, type Store } from '@ployz/store';
import { fixtures, startNats } from '@ployz/testkit';
import { type DeployStatusRecord, isPloyzError, type ReleaseRecord } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryDeployStore } from '../../../test/fakes/memory-store.ts';
import { type DeployStore, systemClock, type Versioned } from '../ports.ts';
import { storeDeployPort } from './store-port.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;

beforeAll(async () => {
  nats = await startNats();
  store = await openStore({ servers: nats.url, installation: 'local', authority: 'auth-cas' });
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

let n = 0;
const freshStatus = (): DeployStatusRecord => fixtures.deployStatus(deployId(Date.parse('2026-01-01') + ++n));

const release = (revision: string): ReleaseRecord => ({
  namespace: 'shop',
  service: `web${n}`,
  revision,
  deploy: 'dep-1',
  slots: [],
  updated_at: '2026-01-01T00:00:00.000Z',
});

function conflicts(results: PromiseSettledResult<unknown>[]): number {
  return results.filter((r) => r.status === 'rejected' && isPloyzError(r.reason, 'STORE_CONFLICT')).length;
}

describe.each([
  ['the JetStream adapter', (): DeployStore => storeDeployPort(store)],
  ['the memory fake', (): DeployStore => new MemoryDeployStore(systemClock)],
])('%s: compare-and-set', (_name, open) => {
  it('two writers racing on one status record: exactly one wins, the other is STORE_CONFLICT', async () => {
    const port = open();
    const record = freshStatus();
    await port.putStatus(record, null);
    const read = (await port.getStatus(record.deploy_id)) as Versioned<DeployStatusRecord>;

    const results = await Promise.allSettled([
      port.putStatus({ ...read.value, step: 5, actor: 'writer-a' }, read.revision),
      port.putStatus({ ...read.value, step: 6, actor: 'writer-b' }, read.revision),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(conflicts(results)).toBe(1);
    const winner = results[0]?.status === 'fulfilled' ? 'writer-a' : 'writer-b';
    const stored = await port.getStatus(record.deploy_id);
    expect(stored?.value.actor).toBe(winner);
    expect(stored?.revision).toBe(results.find((r) => r.status === 'fulfilled')?.value);

    // The loser re-reads and writes on top of the winner.
    const again = await port.putStatus(
      { ...(stored as Versioned<DeployStatusRecord>).value, step: 7 },
      stored?.revision ?? 0,
    );
    expect((await port.getStatus(record.deploy_id))?.revision).toBe(again);
  });

  it('a create of an existing record, and an update or delete at a stale revision, are STORE_CONFLICT', async () => {
    const port = open();
    const record = freshStatus();
    const first = await port.putStatus(record, null);
    await expect(port.putStatus(record, null)).rejects.toMatchObject({ code: 'STORE_CONFLICT' });
    await port.putStatus({ ...record, step: 5 }, first);
    await expect(port.putStatus({ ...record, step: 6 }, first)).rejects.toMatchObject({
      code: 'STORE_CONFLICT',
    });
    expect((await port.getStatus(record.deploy_id))?.value.step).toBe(5);

    const r = release('rev-0123456789abcdef');
    const created = await port.putRelease(r, null);
    const updated = await port.putRelease({ ...r, revision: 'rev-fedcba9876543210' }, created);
    await expect(port.deleteRelease(r.namespace, r.service, created)).rejects.toMatchObject({
      code: 'STORE_CONFLICT',
    });
    await port.deleteRelease(r.namespace, r.service, updated);
    expect((await port.listReleases('shop')).map((x) => x.value.service)).not.toContain(r.service);
  });

  it('a revision put twice is stored once, as first written (content-addressed)', async () => {
    const port = open();
    const first = fixtures.revision(`rev-${String(++n).padStart(16, '0')}`);
    await port.putRevision(first);
    await port.putRevision({ ...first, created_at: '2026-02-02T00:00:00.000Z' });
    expect(await port.getRevision(first.namespace, first.service, first.id)).toEqual(first);
  });
});

describe('the JetStream adapter: a store promotion refuses deploy leases (STORE_PROMOTING)', () => {
  it('while a live promotion record is there: refused and the lease given back; other leases and an expired record pass', async () => {
    const port = storeDeployPort(store);
    const records = await promotionRecords(store.nc, store.scope);
    const now = Date.now();
    const live: PromotionRecord = {
      key: 'promotion',
      run: 'run-1',
      coordinator: 'm1',
      phase: 'migrating',
      from: 1,
      to: 3,
      members: ['m1', 'm2', 'm3'],
      started_at: new Date(now).toISOString(),
      updated_at: new Date(now).toISOString(),
      expires_at: new Date(now + 60_000).toISOString(),
      error: null,
      verified: null,
    };
    const created = await records.create(live);
    try {
      await expect(
        port.acquireLease(store.deployLockKey('promo'), 'me', 30_000, 'deploy'),
      ).rejects.toMatchObject({
        code: 'STORE_PROMOTING',
        details: { run: 'run-1', phase: 'migrating' },
      });
      expect(await port.getLease(store.deployLockKey('promo'))).toBeNull();
      // Not a deploy lease: unaffected.
      const other = await port.acquireLease('cp.lock.routes', 'me', 30_000, 'routes');
      await other.release();
      // The coordinator died: once its record expired, deploys go on.
      await records.update({ ...live, expires_at: new Date(now - 1).toISOString() }, created.revision);
      const held = await port.acquireLease(store.deployLockKey('promo'), 'me', 30_000, 'deploy');
      await held.release();
    } finally {
      const cur = await records.get();
      if (cur) await records.delete(cur.key, cur.revision);
    }
  });
});
