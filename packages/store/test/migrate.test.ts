/**
 * Store migration 1 → 3 (issue 19): a standalone nats-server with ≥ 50 deploy commits' worth of
 * records is copied into a real 3-server cluster at R3; the target must equal the source (digests,
 * seqs, commit ids, keys, tombstones), the source must be untouched, and a run that is aborted or
 * kill -9'd midway must leave the source as it was and let the next run succeed.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNats, startNatsCluster } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { type MigrationPlan, migrateStore, migrationAssets, planMigration, Store } from '../src/index.ts';
import { COMMITS, fillSource, ROUTING_MAX_MSGS } from './migrate-fixture.ts';
import { commit, SCOPE } from './records.fixture.ts';

const RUNNER = fileURLToPath(new URL('./migrate-runner.ts', import.meta.url));

/** Everything a migration must not change on the source: digests plus each stream's state. */
async function sourceState(nc: NatsConnection) {
  const plan = await planMigration(nc, SCOPE);
  const jsm = await jetstreamManager(nc);
  const states = [];
  for (const ref of migrationAssets(SCOPE)) {
    const { state, config } = await jsm.streams.info(ref.stream);
    states.push({
      stream: ref.stream,
      state: { ...state, consumer_count: 0 },
      replicas: config.num_replicas,
    });
  }
  return { assets: plan.assets, states };
}

async function expectTargetEqualsSource(source: NatsConnection, target: NatsConnection, plan: MigrationPlan) {
  const src = await Store.fromConnection(source, { ...SCOPE, ensure: false });
  const dst = await Store.fromConnection(target, { ...SCOPE, ensure: false });
  // Commit ids, order and seqs. Polled: an ephemeral consumer may be placed on a replica that
  // applies the last entries a few ms after the leader (ADR 0003, R3 reads).
  for (const ns of ['shop', 'blog']) {
    const a = await src.commits.list(ns);
    expect(a).toHaveLength(COMMITS / 2);
    await expect
      .poll(async () => (await dst.commits.list(ns)).map((c) => [c.seq, c.commit.id]), { timeout: 15_000 })
      .toEqual(a.map((c) => [c.seq, c.commit.id]));
  }
  expect(await dst.commits.lastSeq()).toBe(COMMITS);
  expect((await dst.commits.get('shop', 'dep-1.final'))?.seq).toBe(
    (await src.commits.get('shop', 'dep-1.final'))?.seq,
  );
  // Routing events: same seqs (the source's stream was trimmed, so it starts after 1).
  const routed = plan.assets.find((a) => a.kind === 'stream' && a.asset.startsWith('routing_events_'));
  expect(routed?.firstSeq).toBe(COMMITS * 2 - ROUTING_MAX_MSGS + 1);
  expect(await dst.routing.lastSeq()).toBe(await src.routing.lastSeq());
  const ac = new AbortController();
  const followed: number[] = [];
  for await (const e of dst.routing.follow(COMMITS * 2 - 3, ac.signal)) {
    followed.push(e.seq);
    if (followed.length === 3) break;
  }
  expect(followed).toEqual([COMMITS * 2 - 2, COMMITS * 2 - 1, COMMITS * 2]);
  // KV: latest values, tombstones.
  await expect
    .poll(async () => (await dst.machines.list()).map((m) => m.key).sort(), { timeout: 15_000 })
    .toEqual(['m1', 'm2']);
  expect(await dst.machines.get('m3')).toBeNull();
  expect((await dst.deployStatus.get('dep-7'))?.value.state).toBe('committed');
  const instances = (await src.instances.list()).length;
  await expect.poll(async () => (await dst.instances.list()).length, { timeout: 15_000 }).toBe(instances);
  expect((await dst.leases.holder(dst.deployLockKey('shop')))?.owner).toBe('a');
  expect(await dst.leases.holder(dst.deployLockKey('blog'))).toBeNull();
  // Every asset at R3 with a leader, and the copy is writable as a store.
  const jsm = await jetstreamManager(target);
  for (const ref of migrationAssets(SCOPE)) {
    const info = await jsm.streams.info(ref.stream);
    expect(info.config.num_replicas, ref.stream).toBe(3);
    expect(info.cluster?.leader, ref.stream).toBeTruthy();
  }
  const next = await dst.commits.append(commit('dep-new.final', { deploy_id: 'dep-new', namespace: 'shop' }));
  expect(next.seq).toBe(COMMITS + 1);
  await expect(
    dst.leases.acquire(dst.deployLockKey('shop'), { owner: 'c', ttlMs: 1000 }),
  ).rejects.toMatchObject({ code: 'DEPLOY_LOCK_HELD' });
}

/** A filled standalone source and an empty 3-server target, both connected, for `fn`. */
async function withStores(
  fn: (s: {
    source: NatsConnection;
    target: NatsConnection;
    sourceUrl: string;
    targetUrls: string[];
  }) => Promise<void>,
  fill = true,
): Promise<void> {
  await using standalone = await startNats();
  await using cluster = await startNatsCluster();
  const source = await connect({ servers: standalone.url });
  const target = await connect({ servers: cluster.urls });
  try {
    if (fill) await fillSource(source);
    await fn({ source, target, sourceUrl: standalone.url, targetUrls: cluster.urls });
  } finally {
    await source.close();
    await target.close();
  }
}

/** A second run after a failed one: succeeds, and the target equals the source. */
async function rerunSucceeds(source: NatsConnection, target: NatsConnection): Promise<void> {
  const plan = await planMigration(source, SCOPE);
  const report = await migrateStore({ source, target, scope: SCOPE });
  expect(report.assets.map((a) => a.digest)).toEqual(plan.assets.map((a) => a.digest));
  await expectTargetEqualsSource(source, target, plan);
}

describe('migrateStore', () => {
  it('copies every asset R1 → R3 and verifies it; the source is untouched', async () => {
    await withStores(async ({ source, target }) => {
      const before = await sourceState(source);
      const plan = await planMigration(source, SCOPE);
      expect(plan.messages).toBeGreaterThan(5 * COMMITS);
      const t0 = Date.now();
      const report = await migrateStore({ source, target, scope: SCOPE });
      console.log(
        `migrated ${plan.messages} messages (${plan.bytes} bytes) in ${Date.now() - t0} ms, ${report.rounds} round(s)`,
      );
      expect(report.assets.map((a) => a.digest)).toEqual(plan.assets.map((a) => a.digest));
      expect(report.assets.map((a) => [a.messages, a.lastId])).toEqual(
        plan.assets.map((a) => [a.messages, a.lastId]),
      );
      expect(await sourceState(source)).toEqual(before);
      await expectTargetEqualsSource(source, target, plan);
    });
  }, 120_000);

  it('refuses a target that holds the assets without a migration marker', async () => {
    await withStores(async ({ source, target }) => {
      await Store.fromConnection(source, SCOPE);
      await Store.fromConnection(target, { ...SCOPE, replicas: 3 }); // a store in use
      const err = await migrateStore({ source, target, scope: SCOPE }).catch((e: unknown) => e);
      expect(isPloyzError(err) && err.code).toBe('STORE_MIGRATION_TARGET_IN_USE');
    }, false);
  }, 60_000);

  it('an aborted run leaves the source as it was; the next run succeeds', async () => {
    await withStores(async ({ source, target }) => {
      const before = await sourceState(source);
      const ac = new AbortController();
      const err = await migrateStore({
        source,
        target,
        scope: SCOPE,
        signal: ac.signal,
        // Abort once the third asset is being copied: two are on the target already.
        onProgress: (p) => {
          if (p.asset === migrationAssets(SCOPE)[2]?.asset) ac.abort();
        },
      }).catch((e: unknown) => e);
      expect(isPloyzError(err) && err.code).toBe('STORE_MIGRATION_FAILED');
      expect(await sourceState(source)).toEqual(before);
      await rerunSucceeds(source, target);
    });
  }, 120_000);

  it('kill -9 of the migrating process midway: source unchanged, a second run succeeds', async () => {
    await withStores(async ({ source, target, sourceUrl, targetUrls }) => {
      const before = await sourceState(source);
      const child = spawn(
        process.execPath,
        [
          '--experimental-transform-types',
          '--no-warnings',
          '--conditions=ployz-source',
          RUNNER,
          sourceUrl,
          targetUrls.join(','),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise<string | null>((resolve) => child.once('exit', (_c, sig) => resolve(sig)));
      let killedAt: string | null = null;
      for await (const line of createInterface({ input: child.stdout })) {
        const p = JSON.parse(line) as { asset?: string; phase?: string; done?: boolean };
        expect(p.done, 'the run ended before it was killed').not.toBe(true);
        // Once the commits are on the target and the routing events are being copied.
        if (p.phase === 'copy' && p.asset?.startsWith('routing_events_')) {
          killedAt = p.asset;
          child.kill('SIGKILL');
          break;
        }
      }
      expect(await exited).toBe('SIGKILL');
      expect(killedAt).not.toBeNull();
      expect(await sourceState(source)).toEqual(before);
      // The killed run left part of a copy on the target.
      const tjsm = await jetstreamManager(target);
      await expect
        .poll(async () => (await tjsm.streams.info(`cp_deploy_commits_${SCOPE.authority}`)).state.messages)
        .toBe(COMMITS);
      await rerunSucceeds(source, target);
    });
  }, 120_000);
});
