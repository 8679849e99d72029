import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { startNats } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../src/index.ts';
import { SCOPE } from './records.fixture.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;

beforeAll(async () => {
  nats = await startNats();
  store = await Store.fromConnection(await connect({ servers: nats.url }), SCOPE);
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

interface Outcome {
  owner: string;
  won: boolean;
  code?: string;
  details?: Record<string, unknown> | null;
}

const HOLDER = fileURLToPath(new URL('./lease-holder.ts', import.meta.url));

/** Starts a child that tries the lease once `test.go` is published. */
function contender(key: string, owner: string, ttlMs: number, mode: 'hold' | 'exit') {
  const child = spawn(
    process.execPath,
    [
      '--experimental-transform-types',
      '--no-warnings',
      '--conditions=ployz-source',
      HOLDER,
      nats.url,
      key,
      owner,
      String(ttlMs),
      mode,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let buf = '';
  child.stdout.on('data', (b: Buffer) => {
    buf += b.toString();
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
    for (const w of waiters.splice(0)) w();
  });
  const line = (n: number) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const l = lines[n];
        if (l !== undefined) resolve(l);
        else waiters.push(check);
      };
      child.once('exit', (code) => reject(new Error(`${owner} exited ${code} before line ${n}`)));
      check();
    });
  return { child, ready: line(0), outcome: line(1).then((l) => JSON.parse(l) as Outcome) };
}

async function go(racers: { ready: Promise<string> }[]) {
  await Promise.all(racers.map((r) => r.ready));
  const nc = await connect({ servers: nats.url });
  nc.publish('test.go');
  await nc.flush();
  await nc.close();
}

describe('leases', () => {
  it('acquire, second acquirer gets DEPLOY_LOCK_HELD with holder and expiry, renew, release', async () => {
    const key = store.deployLockKey('shop');
    const lease = await store.leases.acquire(key, { owner: 'deployer-a', ttlMs: 10_000 });
    const err = await store.leases.acquire(key, { owner: 'deployer-b' }).catch((e: unknown) => e);
    expect(isPloyzError(err, 'DEPLOY_LOCK_HELD')).toBe(true);
    if (!isPloyzError(err)) return;
    expect(err.details).toMatchObject({ holder: 'deployer-a', expires_at: lease.record.expires_at, key });

    const renewed = await store.leases.renew(lease, { ttlMs: 20_000 });
    expect(Date.parse(renewed.record.expires_at)).toBeGreaterThan(Date.parse(lease.record.expires_at));
    // The stale handle lost its CAS token.
    expect(isPloyzError(await store.leases.renew(lease).catch((e: unknown) => e), 'LEASE_LOST')).toBe(true);
    // Someone else's handle (wrong nonce) cannot release it.
    const forged = { ...renewed, record: { ...renewed.record, nonce: 'forged' } };
    expect(isPloyzError(await store.leases.release(forged).catch((e: unknown) => e), 'LEASE_LOST')).toBe(
      true,
    );

    await store.leases.release(renewed);
    expect(await store.leases.holder(key)).toBeNull();
    const b = await store.leases.acquire(key, { owner: 'deployer-b' });
    expect(b.record.owner).toBe('deployer-b');
    await store.leases.release(b);
  });

  it('an expired lease is taken over by CAS, and the old holder learns LEASE_LOST', async () => {
    const key = store.deployLockKey('expiry');
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const now = () => new Date(clock);
    const old = await store.leases.acquire(key, { owner: 'old', ttlMs: 1000, now });
    clock += 500;
    expect(
      isPloyzError(
        await store.leases.acquire(key, { owner: 'new', now }).catch((e: unknown) => e),
        'DEPLOY_LOCK_HELD',
      ),
    ).toBe(true);
    clock += 600;
    const taken = await store.leases.acquire(key, { owner: 'new', ttlMs: 1000, now });
    expect(taken.record.owner).toBe('new');
    expect(isPloyzError(await store.leases.renew(old, { now }).catch((e: unknown) => e), 'LEASE_LOST')).toBe(
      true,
    );
    expect(isPloyzError(await store.leases.release(old).catch((e: unknown) => e), 'LEASE_LOST')).toBe(true);
    expect((await store.leases.holder(key))?.owner).toBe('new');
  });

  it('several processes race for one lease: exactly one wins', async () => {
    const key = store.deployLockKey('race');
    const racers = Array.from({ length: 5 }, (_, i) => contender(key, `p${i}`, 60_000, 'exit'));
    await go(racers);
    const outcomes = await Promise.all(racers.map((r) => r.outcome));
    await Promise.all(racers.map((r) => (r.child.exitCode === null ? once(r.child, 'exit') : null)));
    const winners = outcomes.filter((o) => o.won);
    expect(winners).toHaveLength(1);
    for (const o of outcomes.filter((x) => !x.won)) {
      expect(o.code).toBe('DEPLOY_LOCK_HELD');
      expect(o.details?.holder).toBe(winners[0]?.owner);
    }
    expect((await store.leases.holder(key))?.owner).toBe(winners[0]?.owner);
  }, 90_000);

  it('a holder killed with -9 blocks others only until its lease expires', async () => {
    const key = store.deployLockKey('crash');
    const holder = contender(key, 'doomed', 1500, 'hold');
    try {
      await go([holder]);
      expect((await holder.outcome).won).toBe(true);
      holder.child.kill('SIGKILL');
      await once(holder.child, 'exit');
      const blocked = await store.leases.acquire(key, { owner: 'next' }).catch((e: unknown) => e);
      expect(isPloyzError(blocked, 'DEPLOY_LOCK_HELD')).toBe(true);
      const expiresAt = Date.parse((await store.leases.holder(key))?.expires_at ?? '');
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 50));
      const next = await store.leases.acquire(key, { owner: 'next' });
      expect(next.record.owner).toBe('next');
    } finally {
      if (holder.child.exitCode === null && holder.child.signalCode === null) holder.child.kill('SIGKILL');
    }
  }, 90_000);
});
