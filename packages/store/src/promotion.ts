/**
 * Store promotion 1 → 3 (issue 19), the store-level part: a durable, visible promotion record and
 * the switch-over order around `migrateStore`.
 *
 * The record lives in its own bucket `ployz_store_<inst>_<auth>` (key `promotion`), on the store
 * it describes. It is not one of the migrated assets (DESIGN.md §4): the old store keeps the
 * story of the promotion that left it, the new store gets its own `done` record.
 *
 * Phases: `preparing` (members being started) → `migrating` → `verified` → `switched` (written on
 * the OLD store: the commit point) ; the new store's record is `done`. Any failure before
 * `switched` writes `failed` with the error.
 *
 * After `switched` the old store is frozen (`freezeSource`: every asset sealed, so every write
 * there from any machine is refused with STORE_PROMOTING) and a last catch-up round copies what
 * landed on it since the verification — deploys were refused all along, but a heartbeat, an
 * instance verdict or a lease may have been written — and verifies again; then `done` on the new
 * store and `finished_at` on the old record. A coordinator lost after `switched` leaves the
 * record `switched` without `finished_at`: the next `promote` (same members) resumes at the
 * freeze once the lease expired; the old store only ever loses its writers, never data. The record is a lease too: it carries `expires_at`,
 * renewed while the coordinator works (every TTL/3, compare-and-set); a coordinator killed -9 mid-
 * promotion stops blocking once it expires, the installation never having left the old store,
 * and the next `promote` takes the record over (a failed or expired one).
 *
 * Deploys: `assertNotPromoting` refuses with STORE_PROMOTING while a live record is `preparing`,
 * `migrating` or `verified`, and for ever on an old store whose record is `switched` (a machine
 * that has not switched yet must not write there: those writes would be lost). A deploy takes its
 * namespace lease first and checks here second; the promotion writes its record first and checks
 * the deploy leases second, so on one linearizable store at least one of them sees the other.
 */
import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { LeaseRecord, PloyzError } from '@ployz/types';
import { z } from 'zod';
import { isStreamNotFound } from './assets.ts';
import { assetNames, type Scope } from './keys.ts';
import {
  catchUpMigration,
  finishMigration,
  freezeSource,
  type MigrationProgress,
  type MigrationReport,
  migrateStore,
  migrationAssets,
} from './migrate.ts';
import { RecordBucket, type Versioned } from './record-bucket.ts';

export const PromotionPhase = z.enum(['preparing', 'migrating', 'verified', 'switched', 'done', 'failed']);
export type PromotionPhase = z.infer<typeof PromotionPhase>;

export const PromotionRecord = z.object({
  key: z.literal('promotion'),
  run: z.string().min(1),
  coordinator: z.string().min(1),
  phase: PromotionPhase,
  from: z.number().int(),
  to: z.number().int(),
  members: z.array(z.string().min(1)),
  started_at: z.string(),
  updated_at: z.string(),
  expires_at: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  /** What was verified: per asset, message count, last seq and last id. */
  verified: z
    .array(
      z.object({
        asset: z.string(),
        messages: z.number().int(),
        lastSeq: z.number().int(),
        lastId: z.string().nullable(),
        /** The last source seq the verified copy read (where the catch-up resumes). */
        sourceSeq: z.number().int().optional(),
      }),
    )
    .nullable(),
  /**
   * On the old store's `switched` record: when the catch-up after the freeze verified the new
   * store and wrote `done` there. Unset: the promotion passed its commit point but was not
   * finished (the next `promote` resumes it once the lease expired).
   */
  finished_at: z.string().nullable().optional(),
});
export type PromotionRecord = z.infer<typeof PromotionRecord>;

export const PROMOTION_TTL_MS = 30_000;
const ACTIVE: readonly PromotionPhase[] = ['preparing', 'migrating', 'verified'];

export function promotionBucket(scope: Scope): string {
  return `ployz_store_${scope.installation}_${scope.authority}`;
}

/** Whether a record blocks deploys now (pure). */
export function blocksDeploys(record: PromotionRecord | null, now: Date): boolean {
  if (record === null) return false;
  if (record.phase === 'switched') return true;
  return ACTIVE.includes(record.phase) && Date.parse(record.expires_at) > now.getTime();
}

/** Which store is authoritative by the old store's record (pure): only `switched` moves it. */
export function authoritativeStore(oldRecord: PromotionRecord | null): 'old' | 'new' {
  return oldRecord?.phase === 'switched' ? 'new' : 'old';
}

export type PromotionBucket = RecordBucket<typeof PromotionRecord, []>;

export async function promotionRecords(
  nc: NatsConnection,
  scope: Scope,
  replicas = 1,
): Promise<PromotionBucket> {
  const kvm = new Kvm(jetstream(nc) as unknown as ConstructorParameters<typeof Kvm>[0]);
  const kv = await kvm.create(promotionBucket(scope), { history: 1, replicas });
  return new RecordBucket({
    bucket: promotionBucket(scope),
    kv,
    schema: PromotionRecord,
    keyOfParts: () => 'promotion',
    keyOfRecord: () => 'promotion',
  });
}

/** The promotion record of this store, read only (no bucket: never promoted → null). */
export async function readPromotion(nc: NatsConnection, scope: Scope): Promise<PromotionRecord | null> {
  const kvm = new Kvm(jetstream(nc) as unknown as ConstructorParameters<typeof Kvm>[0]);
  let kv: Awaited<ReturnType<Kvm['open']>>;
  try {
    kv = await kvm.open(promotionBucket(scope), { bindOnly: true });
    await kv.status();
  } catch (err) {
    if (isStreamNotFound(err) || /not found/i.test(String(err))) return null;
    throw err;
  }
  const bucket = new RecordBucket({
    bucket: promotionBucket(scope),
    kv,
    schema: PromotionRecord,
    keyOfParts: () => 'promotion',
    keyOfRecord: () => 'promotion',
  });
  return (await bucket.get())?.value ?? null;
}

/** STORE_PROMOTING unless this store takes deploy writes now. */
export async function assertNotPromoting(nc: NatsConnection, scope: Scope, now = new Date()): Promise<void> {
  const r = await readPromotion(nc, scope);
  if (r === null || !blocksDeploys(r, now)) return;
  throw new PloyzError(
    'STORE_PROMOTING',
    r.phase === 'switched'
      ? `the store moved to ${r.members.join(', ')} (promotion ${r.run}); this machine has not switched over yet — it will by itself`
      : `the store is being promoted to ${r.to} replicas on ${r.members.join(', ')} (${r.phase}, coordinator ${r.coordinator}); deploy once it finishes, or after ${r.expires_at} if its coordinator died`,
    { details: { run: r.run, phase: r.phase, coordinator: r.coordinator, expires_at: r.expires_at } },
  );
}

interface Held {
  bucket: PromotionBucket;
  current: Versioned<PromotionRecord>;
}

async function begin(
  bucket: PromotionBucket,
  coordinator: string,
  members: readonly string[],
  ttlMs: number,
): Promise<{ held: Held; resume: boolean }> {
  const now = new Date();
  const record: PromotionRecord = {
    key: 'promotion',
    run: randomBytes(8).toString('hex'),
    coordinator,
    phase: 'preparing',
    from: 1,
    to: 3,
    members: [...members],
    started_at: now.toISOString(),
    updated_at: now.toISOString(),
    expires_at: new Date(now.getTime() + ttlMs).toISOString(),
    error: null,
    verified: null,
  };
  const existing = await bucket.get();
  if (existing === null) {
    try {
      return { held: { bucket, current: await bucket.create(record) }, resume: false };
    } catch (err) {
      if (err instanceof PloyzError && err.code === 'STORE_CONFLICT')
        throw promoting((await bucket.get())?.value);
      throw err;
    }
  }
  const prev = existing.value;
  if (prev.phase === 'switched' && !prev.finished_at) {
    // Past the commit point but not finished (its coordinator died or failed after `switched`):
    // the next coordinator finishes it, onto the same members, once the lease is free.
    if (Date.parse(prev.expires_at) > now.getTime()) throw promoting(prev);
    if ([...members].sort().join() !== [...prev.members].sort().join()) {
      throw new PloyzError(
        'STORE_PROMOTE_MACHINES_INVALID',
        `promotion ${prev.run} passed its commit point onto ${prev.members.join(', ')}: finish it onto those machines`,
        { details: { run: prev.run, members: prev.members, requested: [...members] } },
      );
    }
    const taken: PromotionRecord = {
      ...prev,
      coordinator,
      updated_at: now.toISOString(),
      expires_at: record.expires_at,
      error: null,
    };
    try {
      return { held: { bucket, current: await bucket.update(taken, existing.revision) }, resume: true };
    } catch (err) {
      if (err instanceof PloyzError && err.code === 'STORE_CONFLICT')
        throw promoting((await bucket.get())?.value);
      throw err;
    }
  }
  if (prev.phase === 'switched' || prev.phase === 'done') {
    throw new PloyzError(
      'STORE_PROMOTE_UNSUPPORTED',
      `the store is already at ${prev.to} replicas (promotion ${prev.run})`,
      {
        details: { current: prev.to, requested: 3 },
      },
    );
  }
  if (blocksDeploys(prev, now)) throw promoting(prev);
  try {
    return { held: { bucket, current: await bucket.update(record, existing.revision) }, resume: false };
  } catch (err) {
    if (err instanceof PloyzError && err.code === 'STORE_CONFLICT')
      throw promoting((await bucket.get())?.value);
    throw err;
  }
}

function promoting(r: PromotionRecord | undefined): PloyzError {
  return new PloyzError(
    'STORE_PROMOTING',
    `another promotion is running (${r?.run ?? '?'}, ${r?.phase ?? '?'}, coordinator ${r?.coordinator ?? '?'})`,
    { details: { run: r?.run, phase: r?.phase, expires_at: r?.expires_at } },
  );
}

async function advance(held: Held, change: Partial<PromotionRecord>, ttlMs: number): Promise<void> {
  const now = new Date();
  const next: PromotionRecord = {
    ...held.current.value,
    ...change,
    updated_at: now.toISOString(),
    expires_at: new Date(now.getTime() + ttlMs).toISOString(),
  };
  try {
    held.current = await held.bucket.update(next, held.current.revision);
  } catch (err) {
    if (err instanceof PloyzError && err.code === 'STORE_CONFLICT') {
      throw new PloyzError(
        'LEASE_LOST',
        `the promotion ${next.run} was taken over (its lease expired); stop`,
        {
          details: { run: next.run },
        },
      );
    }
    throw err;
  }
}

export interface PromoteOptions {
  /** The old store (standalone, authoritative until `switched`). */
  source: NatsConnection;
  scope: Scope;
  coordinator: string;
  members: readonly string[];
  /** Starts the cluster members and returns a connection to them (the target). */
  prepare: (signal: AbortSignal) => Promise<NatsConnection>;
  /**
   * After `switched` is durable on the old store: moves every machine over (leaf remotes, ployzd,
   * followers). Failing here leaves the installation on the new store, to be finished again.
   */
  switchOver?: (target: NatsConnection) => Promise<void>;
  ttlMs?: number;
  signal?: AbortSignal;
  onPhase?: (phase: PromotionPhase, record: PromotionRecord) => void | Promise<void>;
  onProgress?: (p: MigrationProgress) => void;
  replicateTimeoutMs?: number;
}

export interface PromotionResult {
  run: string;
  report: MigrationReport;
  target: NatsConnection;
}

export async function promoteStore(options: PromoteOptions): Promise<PromotionResult> {
  const ttl = options.ttlMs ?? PROMOTION_TTL_MS;
  const { scope } = options;
  const { held, resume } = await begin(
    await promotionRecords(options.source, scope),
    options.coordinator,
    options.members,
    ttl,
  );
  const run = held.current.value.run;
  const abort = new AbortController();
  const onAbort = () => abort.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // The record is a lease until the promotion is finished (`switched` included).
  let renewing = Promise.resolve();
  const timer = setInterval(
    () => {
      renewing = renewing.then(() => advance(held, {}, ttl)).catch((err: unknown) => abort.abort(err));
    },
    Math.max(100, Math.floor(ttl / 3)),
  );
  const phase = async (p: PromotionPhase, change: Partial<PromotionRecord> = {}) => {
    await renewing;
    await advance(held, { ...change, phase: p }, ttl);
    await options.onPhase?.(p, held.current.value);
  };
  try {
    let target: NatsConnection;
    if (resume) {
      target = await options.prepare(abort.signal);
    } else {
      await options.onPhase?.('preparing', held.current.value);
      await assertNoDeploys(options.source, scope);
      target = await options.prepare(abort.signal);
      await phase('migrating');
      const report = await migrateStore({
        source: options.source,
        target,
        scope,
        replicas: 3,
        signal: abort.signal,
        onProgress: options.onProgress,
        replicateTimeoutMs: options.replicateTimeoutMs,
      });
      await phase('verified', { verified: verifiedOf(report) });
      // The commit point: from here the new store is the installation's.
      await phase('switched');
    }
    // Writes may have landed on the old store since the verification (anything but deploys: a
    // machine's heartbeat, an instance verdict, a lease): freeze it, then carry them over.
    checkAborted(abort.signal);
    await freezeSource(options.source, scope);
    const sourceSeqs = Object.fromEntries(
      (held.current.value.verified ?? []).flatMap((a) =>
        a.sourceSeq === undefined ? [] : [[streamOf(scope, a.asset), a.sourceSeq] as const],
      ),
    );
    const report = await catchUpMigration({
      source: options.source,
      target,
      scope,
      run,
      replicas: 3,
      sourceSeqs,
      signal: abort.signal,
      onProgress: options.onProgress,
    });
    const onTarget = await promotionRecords(target, scope, 3);
    const done: PromotionRecord = {
      ...held.current.value,
      phase: 'done',
      verified: verifiedOf(report),
      updated_at: new Date().toISOString(),
    };
    const there = await onTarget.get();
    if (there) await onTarget.update(done, there.revision);
    else await onTarget.create(done);
    await finishMigration(target, scope);
    clearInterval(timer);
    await renewing;
    await advance(held, { verified: verifiedOf(report), finished_at: new Date().toISOString() }, ttl);
    await options.onPhase?.('done', held.current.value);
    await options.switchOver?.(target);
    return { run, report, target };
  } catch (err) {
    clearInterval(timer);
    const e =
      err instanceof PloyzError ? err : new PloyzError('STORE_MIGRATION_FAILED', String(err), { cause: err });
    await renewing.catch(() => {});
    if (held.current.value.phase !== 'switched') {
      await advance(held, { phase: 'failed', error: { code: e.code, message: e.message } }, 0).catch(
        () => {},
      );
    } else if (!held.current.value.finished_at) {
      // Past the commit point: stays `switched`, lease released, so the next run finishes it.
      await advance(held, { error: { code: e.code, message: e.message } }, 0).catch(() => {});
    }
    throw e;
  } finally {
    clearInterval(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function verifiedOf(report: MigrationReport): NonNullable<PromotionRecord['verified']> {
  return report.assets.map((a) => ({
    asset: a.asset,
    messages: a.messages,
    lastSeq: a.lastSeq,
    lastId: a.lastId,
    sourceSeq: report.sourceSeqs[a.stream],
  }));
}

function streamOf(scope: Scope, asset: string): string {
  return migrationAssets(scope).find((r) => r.asset === asset)?.stream ?? asset;
}

function checkAborted(signal: AbortSignal): void {
  if (signal.aborted) {
    throw signal.reason instanceof PloyzError
      ? signal.reason
      : new PloyzError('STORE_MIGRATION_FAILED', `the promotion was aborted: ${String(signal.reason)}`, {
          cause: signal.reason,
        });
  }
}

/** DEPLOY_LOCK_HELD when a deploy holds a live namespace lease on the store. */
async function assertNoDeploys(nc: NatsConnection, scope: Scope): Promise<void> {
  const kvm = new Kvm(jetstream(nc) as unknown as ConstructorParameters<typeof Kvm>[0]);
  const locks = new RecordBucket({
    bucket: assetNames(scope).locks,
    kv: await kvm.open(assetNames(scope).locks, { bindOnly: true }),
    schema: LeaseRecord,
    keyOfParts: (key: string) => key,
    keyOfRecord: (r) => r.key,
  });
  const now = Date.now();
  for (const lease of await locks.list('cp.lock.deploy.>')) {
    if (Date.parse(lease.value.expires_at) > now) {
      throw new PloyzError(
        'DEPLOY_LOCK_HELD',
        `${lease.key} is held by ${lease.value.owner} until ${lease.value.expires_at}: a deploy is running; promote once it finishes`,
        { details: { key: lease.key, holder: lease.value.owner, expires_at: lease.value.expires_at } },
      );
    }
  }
}
