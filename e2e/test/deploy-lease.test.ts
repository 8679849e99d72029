import { openStore, type Store } from '@ployz/store';
import { describe, expect, it } from 'vitest';
import { DeployHarness, helloManifest } from './deploy-harness.ts';
import { type DeployDetail, deployIdOf, instancesWith, type StatusRow, sample } from './deploy-scenarios.ts';

const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[deploy-lease +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

/** ployzd's lease TTL (deploy/plugin.ts `leaseTtlMs`). */
const LEASE_TTL_MS = 15_000;
const LOCK_KEY = 'cp.lock.deploy.demo';

/** A hello manifest whose candidate listens only after `delayMs`. */
function slow(version: string, host: string, delayMs: number): string {
  return helloManifest({ version, host }).replace(
    `HELLO_VERSION = "${version}" }`,
    `HELLO_VERSION = "${version}", HELLO_LISTEN_DELAY_MS = "${delayMs}" }`,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('deploy lease on real NATS (real ployzd, dockerd, nats, gateway)', () => {
  it('renewed through an apply longer than its TTL; lost mid-apply → LEASE_LOST, nothing committed', async () => {
    const { h, d } = await DeployHarness.up();
    await using _h = h;
    const store: Store = await openStore({
      ...(await h.asPloyzd()),
      installation: h.installation,
      authority: 'auth-default',
      ensure: false,
      timeoutMs: 5000,
    });
    try {
      const v1 = await d.write('v1.toml', helloManifest({ version: 'v1', host: d.host }));
      expect((await d.deploy(v1)).code).toBe(0);
      await d.waitServing('v1');
      expect(await store.locks.getByKey(LOCK_KEY)).toBeNull();

      mark('---- renewal: readiness takes longer than the lease TTL');
      let onStarting!: () => void;
      const starting = new Promise<void>((r) => {
        onStarting = r;
      });
      const v2 = await d.write('v2.toml', slow('v2', d.host, LEASE_TTL_MS + 5_000));
      const longRun = d.deploy(v2, (l) => {
        if (l.type === 'instance' && l.action === 'starting') onStarting();
      });
      void longRun.then(() => onStarting());
      await starting;
      const taken = await store.locks.getByKey(LOCK_KEY);
      expect(taken?.value.owner).toMatch(/^ployzd:m1:/);
      const firstExpiry = Date.parse(String(taken?.value.expires_at));
      // Past the expiry the lease was taken with: still held, by the same holder, for longer.
      await sleep(Math.max(0, firstExpiry - Date.now()) + 1_000);
      const held = await store.locks.getByKey(LOCK_KEY);
      expect(held?.value).toMatchObject({ owner: taken?.value.owner, nonce: taken?.value.nonce });
      expect(Date.parse(String(held?.value.expires_at))).toBeGreaterThan(Date.now());
      const concurrent = await d.deploy(v1);
      expect(concurrent.last).toMatchObject({ type: 'error', error: { code: 'DEPLOY_LOCK_HELD' } });
      const long = await longRun;
      expect(long.code, JSON.stringify(long.last)).toBe(0);
      expect(long.last).toMatchObject({ type: 'done', status: { state: 'committed' } });
      const ready = long.lines.find((l) => l.type === 'instance' && l.action === 'ready');
      expect(Number(ready?.waited_ms)).toBeGreaterThan(LEASE_TTL_MS);
      await d.waitServing('v2');
      expect(await store.locks.getByKey(LOCK_KEY)).toBeNull();
      const servingV2 = await d.workloads();

      mark('---- lease overwritten during the readiness wait');
      const v3 = await d.write('v3.toml', slow('v3', d.host, 60_000));
      let onStarting3!: () => void;
      const starting3 = new Promise<void>((r) => {
        onStarting3 = r;
      });
      const stolenRun = d.deploy(v3, (l) => {
        if (l.type === 'instance' && l.action === 'starting') onStarting3();
      });
      void stolenRun.then(() => onStarting3());
      await starting3;
      const current = await store.locks.getByKey(LOCK_KEY);
      expect(current?.value.owner).toMatch(/^ployzd:m1:/);
      if (!current) throw new Error('no lease while the deploy runs');
      const far = new Date(Date.now() + 10 * 60_000).toISOString();
      await store.locks.update(
        { ...current.value, owner: 'e2e-thief', nonce: 'stolen', purpose: 'e2e', expires_at: far },
        current.revision,
      );
      const stolen = await stolenRun;
      const stolenId = deployIdOf(stolen.lines);
      expect(stolen.code).not.toBe(0);
      expect(stolen.last).toMatchObject({ type: 'error', error: { code: 'LEASE_LOST' } });
      expect(stolen.lines.filter((l) => l.type === 'commit')).toEqual([]);
      expect(stolen.lines.some((l) => l.type === 'instance' && l.action === 'ready')).toBe(false);
      expect(instancesWith(stolen.lines, 'discarded')).toEqual(instancesWith(stolen.lines, 'starting'));

      const shown = await d.ctlJson<DeployDetail>('deploy', 'show', stolenId);
      expect(shown.status).toMatchObject({ state: 'failed', commits: [], error: { code: 'LEASE_LOST' } });
      expect(shown.commits).toEqual([]);
      expect((await d.ctlJson<StatusRow[]>('deploy', 'ls'))[0]).toMatchObject({
        deploy_id: stolenId,
        state: 'failed',
      });
      // Releases unchanged: v2's manifest is still what is committed; v3 is still pending.
      expect((await h.ctl('deploy', 'preview', '-f', v2)).code).toBe(0);
      expect((await h.ctl('deploy', 'preview', '-f', v3)).code).toBe(3);
      expect(new Set(await sample(d, 15))).toEqual(new Set(['v2']));
      expect(await d.workloads()).toEqual(servingV2);
      // The thief's record is left alone (a lost lease is never released over someone else).
      expect((await store.locks.getByKey(LOCK_KEY))?.value.owner).toBe('e2e-thief');
      mark('done');
    } finally {
      await store.close();
    }
  });
});
