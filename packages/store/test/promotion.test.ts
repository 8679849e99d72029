/**
 * Store promotion 1 → 3 (issue 19), store level, against a real standalone nats-server and a real
 * 3-server cluster: the durable promotion record, deploys refused meanwhile (STORE_PROMOTING),
 * the old store authoritative until `switched`, a running deploy refusing the promotion, and a
 * coordinator killed -9 mid-migration leaving the old store working and a second promotion
 * succeeding.
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
import { SCOPE } from './records.fixture.ts';

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
  it('deploys refused while it runs; verified, then switched on the old store and done on the new', async () => {
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
        },
      });
      try {
        expect(seen).toEqual([
          { phase: 'preparing', deploy: 'STORE_PROMOTING', authority: 'old' },
          { phase: 'migrating', deploy: 'STORE_PROMOTING', authority: 'old' },
          { phase: 'verified', deploy: 'STORE_PROMOTING', authority: 'old' },
          { phase: 'switched', deploy: 'STORE_PROMOTING', authority: 'new' },
        ]);
        const old = await record(source);
        expect(old?.phase).toBe('switched');
        const commits = old?.verified?.find((a) => a.asset === `cp_deploy_commits_${SCOPE.authority}`);
        expect(commits).toMatchObject({
          messages: COMMITS,
          lastSeq: COMMITS,
          lastId: `dep-${COMMITS - 1}=2Efinal`, // the subject's last token: the id, escaped
        });
        // The new store: done, deploys allowed, the history there with its ids and seqs.
        expect((await record(result.target))?.phase).toBe('done');
        expect(await codeOf(assertNotPromoting(result.target, SCOPE))).toBeNull();
        const dst = await Store.fromConnection(result.target, { ...SCOPE, ensure: false });
        expect(await dst.commits.lastSeq()).toBe(COMMITS);
        expect((await dst.commits.get('shop', 'dep-1.final'))?.seq).toBe(
          (await store.commits.get('shop', 'dep-1.final'))?.seq,
        );
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
      // A child that fails by itself before the kill (a JetStream timeout on a loaded machine
      // writes `failed`) proves nothing about a kill: run it again, up to three times.
      let killed = false;
      for (let attempt = 1; attempt <= 3 && !killed; attempt++) {
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
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        const exited = new Promise<string | null>((resolve) => child.once('exit', (_c, sig) => resolve(sig)));
        for await (const line of createInterface({ input: child.stdout })) {
          const p = JSON.parse(line) as { phase?: string; asset?: string; done?: boolean };
          expect(p.done, 'the promotion ended before it was killed').not.toBe(true);
          if (p.phase === 'copy' && p.asset?.startsWith('routing_events_')) {
            child.kill('SIGKILL');
            killed = true;
            break;
          }
        }
        const signal = await exited;
        if (killed) expect(signal).toBe('SIGKILL');
        else expect((await record(source))?.phase, 'a child that ended by itself failed').toBe('failed');
      }
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
});
