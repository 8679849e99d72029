/**
 * Store promotion 1 → 3 (issue 19), store level, against a real standalone nats-server and a real
 * 3-server cluster: the durable promotion record, deploys refused meanwhile (STORE_PROMOTING),
 * the old store authoritative until `switched`, writes landing on the old store after the
 * verification carried over (the old store frozen after `switched`, a catch-up round), a running
 * deploy refusing the promotion, a coordinator killed -9 mid-migration leaving the old store
 * working and a second promotion succeeding, and one killed -9 after the commit point resumed by
 * the next promotion.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNats, startNatsCluster } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import {
  assertNotPromoting,
  authoritativeStore,
  blocksDeploys,
  type PromoteOptions,
  type PromotionRecord,
  type PromotionResult,
  promoteStore,
  promotionRecords,
  Store,
} from '../src/index.ts';
import { COMMITS, fillSource } from './migrate-fixture.ts';
import { commit, machine, SCOPE } from './records.fixture.ts';

const RUNNER = fileURLToPath(new URL('./promote-runner.ts', import.meta.url));

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (err) {
    return isPloyzError(err) ? err.code : `not a PloyzError: ${String(err)}`;
  }
}

/** The fixture holds a deploy lease for an hour; a promotion test starts with no deploy running. */
async function releaseDeployLeases(store: Store): Promise<void> {
  for (const l of await store.locks.list('cp.lock.deploy.>')) await store.locks.delete(l.key, l.revision);
}

async function withStores(
  fn: (s: { source: NatsConnection; sourceUrl: string; targetUrls: string[]; store: Store }) => Promise<void>,
): Promise<void> {
  await using standalone = await startNats();
  await using cluster = await startNatsCluster();
  const source = await connect({ servers: standalone.url });
  try {
    const store = await fillSource(source);
    await fn({ source, sourceUrl: standalone.url, targetUrls: cluster.urls, store });
  } finally {
    await source.close();
  }
}

/** promoteStore onto m1, m2, m3 from `source`, coordinated by `coordinator`. */
function promote(
  source: NatsConnection,
  prepare: PromoteOptions['prepare'],
  extra: Partial<PromoteOptions> = {},
): Promise<PromotionResult> {
  return promoteStore({
    source,
    scope: SCOPE,
    coordinator: 'm1',
    members: ['m1', 'm2', 'm3'],
    prepare,
    ...extra,
  });
}

async function record(nc: NatsConnection): Promise<PromotionRecord | null> {
  return (await (await promotionRecords(nc, SCOPE)).get())?.value ?? null;
}

/**
 * Runs promote-runner.ts as the coordinator and kills it -9 at the first line `killAt` accepts. A
 * child that fails by itself first (a JetStream timeout on a loaded machine writes `failed`)
 * proves nothing about a kill: it is run again, up to three times. Returns whether it was killed.
 */
async function killCoordinator(
  source: NatsConnection,
  sourceUrl: string,
  targetUrls: string[],
  killAt: (line: { phase?: string; asset?: string }) => boolean,
  hold = '',
): Promise<boolean> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const child = spawn(
      process.execPath,
      [
        '--experimental-transform-types',
        '--no-warnings',
        '--conditions=ployz-source',
        RUNNER,
        sourceUrl,
        targetUrls.join(','),
        '5000',
        hold,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<string | null>((resolve) => child.once('exit', (_c, sig) => resolve(sig)));
    let killed = false;
    for await (const line of createInterface({ input: child.stdout })) {
      const p = JSON.parse(line) as { phase?: string; asset?: string; done?: boolean };
      expect(p.done, 'the promotion ended before it was killed').not.toBe(true);
      if (killAt(p)) {
        child.kill('SIGKILL');
        killed = true;
        break;
      }
    }
    const signal = await exited;
    if (killed) {
      expect(signal).toBe('SIGKILL');
      return true;
    }
    expect((await record(source))?.phase, 'a child that ended by itself failed').toBe('failed');
  }
  return false;
}

describe('blocksDeploys / authoritativeStore', () => {
  const base: PromotionRecord = {
    key: 'promotion',
    run: 'r',
    coordinator: 'm1',
    phase: 'migrating',
    from: 1,
    to: 3,
    members: ['m1', 'm2', 'm3'],
    started_at: '2026-12-03T00:00:00.000Z',
    updated_at: '2026-12-03T00:00:00.000Z',
    expires_at: '2026-12-03T00:00:30.000Z',
    error: null,
    verified: null,
  };
  const at = (s: number) => new Date(Date.parse('2026-12-03T00:00:00.000Z') + s * 1000);
  it('a live active record blocks, an expired or failed one does not, switched always does', () => {
    expect(blocksDeploys(null, at(0))).toBe(false);
    expect(blocksDeploys(base, at(10))).toBe(true);
    expect(blocksDeploys(base, at(31))).toBe(false);
    expect(blocksDeploys({ ...base, phase: 'failed' }, at(10))).toBe(false);
    expect(blocksDeploys({ ...base, phase: 'done' }, at(10))).toBe(false);
    expect(blocksDeploys({ ...base, phase: 'switched' }, at(3600))).toBe(true);
    expect(authoritativeStore(null)).toBe('old');
    expect(authoritativeStore({ ...base, phase: 'verified' })).toBe('old');
    expect(authoritativeStore({ ...base, phase: 'switched' })).toBe('new');
  });
});

describe('promoteStore (real nats-server: standalone → 3-server cluster)', () => {
  it('deploys refused while it runs; verified, switched on the old store (frozen, the late writes carried over) and done on the new', async () => {
    await withStores(async ({ source, targetUrls, store }) => {
      await releaseDeployLeases(store);
      expect(await codeOf(assertNotPromoting(source, SCOPE))).toBeNull();
      const seen: { phase: string; deploy: string | null; authority: 'old' | 'new' }[] = [];
      const result = await promote(source, () => connect({ servers: targetUrls }), {
        onPhase: async (phase) => {
          seen.push({
            phase,
            deploy: await codeOf(assertNotPromoting(source, SCOPE)),
            authority: authoritativeStore(await record(source)),
          });
          // Writes that are not deploys land on the old store after the verification: a machine
          // joins and a commit is appended (verified → switched), a lease is taken and another
          // commit appended (switched, before the freeze). None may be lost.
          if (phase === 'verified') {
            await store.machines.create(machine('m4'));
            await store.commits.append(
              commit('dep-late1.final', { deploy_id: 'dep-late1', namespace: 'shop' }),
            );
          }
          if (phase === 'switched') {
            await store.leases.acquire('cp.lock.acme.late', { owner: 'renewer-m2', ttlMs: 600_000 });
            await store.commits.append(
              commit('dep-late2.final', { deploy_id: 'dep-late2', namespace: 'blog' }),
            );
          }
        },
      });
      try {
        expect(seen).toEqual([
          { phase: 'preparing', deploy: 'STORE_PROMOTING', authority: 'old' },
          { phase: 'migrating', deploy: 'STORE_PROMOTING', authority: 'old' },
          { phase: 'verified', deploy: 'STORE_PROMOTING', authority: 'old' },
          { phase: 'switched', deploy: 'STORE_PROMOTING', authority: 'new' },
          { phase: 'done', deploy: 'STORE_PROMOTING', authority: 'new' },
        ]);
        const old = await record(source);
        expect(old?.phase).toBe('switched');
        expect(old?.finished_at).toBeTruthy();
        const commits = old?.verified?.find((a) => a.asset === `cp_deploy_commits_${SCOPE.authority}`);
        expect(commits).toMatchObject({
          messages: COMMITS + 2,
          lastSeq: COMMITS + 2,
          lastId: 'dep-late2=2Efinal', // the subject's last token: the id, escaped
        });
        // The old store is frozen: every write there is refused, reads still answer.
        expect(await codeOf(store.machines.create(machine('m5')))).toBe('STORE_PROMOTING');
        expect(
          await codeOf(store.commits.append(commit('dep-late3.final', { deploy_id: 'dep-late3' }))),
        ).toBe('STORE_PROMOTING');
        expect(
          await codeOf(store.leases.acquire('cp.lock.acme.other', { owner: 'renewer-m3', ttlMs: 60_000 })),
        ).toBe('STORE_PROMOTING');
        expect(await store.commits.lastSeq()).toBe(COMMITS + 2);
        // The new store: done, deploys allowed, the history there with its ids and seqs.
        expect((await record(result.target))?.phase).toBe('done');
        expect(await codeOf(assertNotPromoting(result.target, SCOPE))).toBeNull();
        const dst = await Store.fromConnection(result.target, { ...SCOPE, ensure: false });
        expect(await dst.commits.lastSeq()).toBe(COMMITS + 2);
        expect((await dst.commits.get('shop', 'dep-1.final'))?.seq).toBe(
          (await store.commits.get('shop', 'dep-1.final'))?.seq,
        );
        await expect
          .poll(async () => (await dst.commits.get('shop', 'dep-late1.final'))?.seq, { timeout: 15_000 })
          .toBe(COMMITS + 1);
        await expect
          .poll(async () => (await dst.commits.get('blog', 'dep-late2.final'))?.seq, { timeout: 15_000 })
          .toBe(COMMITS + 2);
        expect((await dst.machines.get('m4'))?.value.id).toBe('m4');
        expect((await dst.leases.holder('cp.lock.acme.late'))?.owner).toBe('renewer-m2');
        // The new store takes writes.
        await dst.machines.create(machine('m5'));
        // The old store refuses a second promotion: it already moved.
        expect(await codeOf(promote(source, () => connect({ servers: targetUrls })))).toBe(
          'STORE_PROMOTE_UNSUPPORTED',
        );
      } finally {
        await result.target.close();
      }
    });
  }, 120_000);

  it('a running deploy refuses the promotion (DEPLOY_LOCK_HELD); a second promotion at once is STORE_PROMOTING', async () => {
    await withStores(async ({ source, targetUrls, store }) => {
      const target = await connect({ servers: targetUrls });
      try {
        // The fixture's `shop` lease is live.
        expect(await codeOf(promote(source, async () => target))).toBe('DEPLOY_LOCK_HELD');
        expect((await record(source))?.phase).toBe('failed');
        expect(await codeOf(assertNotPromoting(source, SCOPE))).toBeNull();
        await releaseDeployLeases(store);
        let second: string | null | undefined;
        const result = await promote(source, async () => {
          second = await codeOf(promote(source, async () => target, { coordinator: 'm2' }));
          return target;
        });
        expect(second).toBe('STORE_PROMOTING');
        expect(result.report.assets.length).toBeGreaterThan(5);
      } finally {
        await target.close();
      }
    });
  }, 120_000);

  it('kill -9 of the coordinator mid-migration: the old store keeps working, promote again succeeds', async () => {
    await withStores(async ({ source, sourceUrl, targetUrls, store }) => {
      await releaseDeployLeases(store);
      const killed = await killCoordinator(
        source,
        sourceUrl,
        targetUrls,
        (p) => p.phase === 'copy' && p.asset?.startsWith('routing_events_') === true,
      );
      expect(killed).toBe(true);
      const left = await record(source);
      expect(left?.phase).toBe('migrating');
      expect(authoritativeStore(left)).toBe('old');
      // Deploys are refused until the dead coordinator's lease expires (5 s: long enough that a loaded machine still sees it live right after the kill), then accepted.
      expect(await codeOf(assertNotPromoting(source, SCOPE))).toBe('STORE_PROMOTING');
      await expect
        .poll(() => codeOf(assertNotPromoting(source, SCOPE)), { timeout: 15_000, interval: 250 })
        .toBeNull();
      // The old store takes writes as before.
      const lease = await store.leases.acquire(store.deployLockKey('shop'), {
        owner: 'deploy-after-kill',
        ttlMs: 60_000,
      });
      await store.leases.release(lease);
      const result = await promote(source, () => connect({ servers: targetUrls }));
      try {
        expect((await record(source))?.phase).toBe('switched');
        expect((await record(result.target))?.phase).toBe('done');
        expect(result.run).not.toBe(left?.run);
        const dst = await Store.fromConnection(result.target, { ...SCOPE, ensure: false });
        expect(await dst.commits.lastSeq()).toBe(COMMITS);
      } finally {
        await result.target.close();
      }
    });
  }, 120_000);

  it('kill -9 of the coordinator after the commit point: the next promotion resumes it, nothing written meanwhile is lost', async () => {
    await withStores(async ({ source, sourceUrl, targetUrls, store }) => {
      await releaseDeployLeases(store);
      // Held once it printed `switched` (record written, old store not frozen yet).
      const killed = await killCoordinator(
        source,
        sourceUrl,
        targetUrls,
        (p) => p.phase === 'switched',
        'switched',
      );
      expect(killed).toBe(true);
      const left = await record(source);
      expect(left).toMatchObject({ phase: 'switched', coordinator: 'child' });
      expect(left?.finished_at ?? null).toBeNull();
      expect(authoritativeStore(left)).toBe('new');
      // Deploys stay refused (the old store is no longer the installation's); other writes still
      // land on it until the freeze, and must reach the new store.
      expect(await codeOf(assertNotPromoting(source, SCOPE))).toBe('STORE_PROMOTING');
      await store.machines.create(machine('m4'));
      await store.commits.append(commit('dep-late1.final', { deploy_id: 'dep-late1', namespace: 'shop' }));
      // The dead coordinator's lease is still live: a second coordinator waits for it.
      expect(
        await codeOf(promote(source, () => connect({ servers: targetUrls }), { coordinator: 'm2' })),
      ).toBe('STORE_PROMOTING');
      // Onto other machines it is refused: the commit point named these.
      await expect
        .poll(async () => Date.parse(left?.expires_at ?? '') < Date.now(), { timeout: 15_000 })
        .toBe(true);
      expect(
        await codeOf(
          promote(source, () => connect({ servers: targetUrls }), { members: ['m1', 'm2', 'm4'] }),
        ),
      ).toBe('STORE_PROMOTE_MACHINES_INVALID');
      const result = await promote(source, () => connect({ servers: targetUrls }), { coordinator: 'm2' });
      try {
        expect(result.run).toBe(left?.run);
        expect(await record(source)).toMatchObject({ phase: 'switched', coordinator: 'm2' });
        expect((await record(source))?.finished_at).toBeTruthy();
        expect((await record(result.target))?.phase).toBe('done');
        expect(await codeOf(store.machines.create(machine('m5')))).toBe('STORE_PROMOTING');
        const dst = await Store.fromConnection(result.target, { ...SCOPE, ensure: false });
        expect(await dst.commits.lastSeq()).toBe(COMMITS + 1);
        await expect
          .poll(async () => (await dst.commits.get('shop', 'dep-late1.final'))?.seq, { timeout: 15_000 })
          .toBe(COMMITS + 1);
        expect((await dst.machines.get('m4'))?.value.id).toBe('m4');
        // Finished: a third promotion is refused as before.
        expect(await codeOf(promote(source, () => connect({ servers: targetUrls })))).toBe(
          'STORE_PROMOTE_UNSUPPORTED',
        );
      } finally {
        await result.target.close();
      }
    });
  }, 120_000);
});
