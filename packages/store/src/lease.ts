/**
 * Leases in `cp_locks_<auth>` (2.9 has no per-key TTL, so a lease carries `expires_at` and
 * every change is compare-and-set on the KV revision):
 *
 * - acquire: create the key; if it exists and has not expired → DEPLOY_LOCK_HELD at once, with
 *   holder and expiry in `details`; if it expired → take it over by CAS on its revision.
 * - renew: CAS on the revision we hold, extending `expires_at`; any change by someone else
 *   (takeover after expiry, release) → LEASE_LOST.
 * - release: only the owner with its nonce, CAS-delete on the revision we hold.
 *
 * Expiry compares wall clocks of the machines involved: keep them NTP-synced and choose a TTL
 * well above the expected skew (default 30 s, renew every TTL/3).
 *
 * An acquire is confirmed before it returns: nats-server 2.9 checks a clustered stream's expected
 * last subject sequence against what the leader has applied, not against writes still in flight,
 * so two contenders' compare-and-set writes on one revision can both be acknowledged at R3 (the
 * Jepsen-style check found two holders in ~20% of contended acquires; ADR 0003). After our write,
 * a fence write on `cp.lock.fence` is acknowledged only once every earlier write is applied;
 * then the key's last revision must still be ours, else a concurrent contender won and this
 * acquire is DEPLOY_LOCK_HELD (its write is not ours to undo).
 */
import { randomBytes } from 'node:crypto';
import { type LeaseRecord, PloyzError } from '@ployz/types';
import type { RecordBucket } from './record-bucket.ts';

export interface Lease {
  key: string;
  record: LeaseRecord;
  /** KV revision of our write; the CAS token for renew and release. */
  revision: number;
}

export interface AcquireOptions {
  owner: string;
  ttlMs?: number;
  purpose?: string;
  /** Clock, for tests. */
  now?: () => Date;
}

export const DEFAULT_LEASE_TTL_MS = 30_000;

export type LeaseBucket = RecordBucket<typeof LeaseRecord, [key: string]>;

export class Leases {
  readonly #bucket: LeaseBucket;

  constructor(bucket: LeaseBucket) {
    this.#bucket = bucket;
  }

  async acquire(key: string, options: AcquireOptions): Promise<Lease> {
    const now = options.now?.() ?? new Date();
    const ttl = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    const record: LeaseRecord = {
      key,
      owner: options.owner,
      nonce: randomBytes(12).toString('hex'),
      purpose: options.purpose ?? 'deploy',
      acquired_at: now.toISOString(),
      expires_at: new Date(now.getTime() + ttl).toISOString(),
    };
    try {
      const created = await this.#bucket.create(record);
      return await this.#confirmed({ key, record, revision: created.revision }, now);
    } catch (err) {
      if (!(err instanceof PloyzError) || err.code !== 'STORE_CONFLICT') throw err;
    }
    const current = await this.#bucket.getByKey(key);
    if (current === null) {
      // Released between our create and our read: one more create, and a conflict is a loss.
      return this.#confirmed(await this.#createOrHeld(key, record), now);
    }
    if (Date.parse(current.value.expires_at) > now.getTime()) throw held(current.value);
    try {
      const taken = await this.#bucket.update(record, current.revision);
      return await this.#confirmed({ key, record, revision: taken.revision }, now);
    } catch (err) {
      if (err instanceof PloyzError && err.code === 'STORE_CONFLICT') {
        const winner = await this.#bucket.getByKey(key);
        throw held(winner?.value ?? current.value);
      }
      throw err;
    }
  }

  /** Extends the lease; LEASE_LOST when it was taken over or released meanwhile. */
  async renew(lease: Lease, options: { ttlMs?: number; now?: () => Date } = {}): Promise<Lease> {
    const now = options.now?.() ?? new Date();
    const ttl = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    const record: LeaseRecord = { ...lease.record, expires_at: new Date(now.getTime() + ttl).toISOString() };
    try {
      const next = await this.#bucket.update(record, lease.revision);
      return { key: lease.key, record, revision: next.revision };
    } catch (err) {
      if (err instanceof PloyzError && err.code === 'STORE_CONFLICT') throw lost(lease);
      throw err;
    }
  }

  /** Releases the lease if we still hold it (same nonce and revision); LEASE_LOST otherwise. */
  async release(lease: Lease): Promise<void> {
    const current = await this.#bucket.getByKey(lease.key);
    if (!current || current.value.nonce !== lease.record.nonce || current.revision !== lease.revision) {
      throw lost(lease);
    }
    try {
      await this.#bucket.delete(lease.key, lease.revision);
    } catch (err) {
      if (err instanceof PloyzError && err.code === 'STORE_CONFLICT') throw lost(lease);
      throw err;
    }
  }

  /** The current holder, expired or not; null when free. */
  async holder(key: string): Promise<LeaseRecord | null> {
    return (await this.#bucket.getByKey(key))?.value ?? null;
  }

  /** Our write is still the key's last once every write before the fence is applied; else held. */
  async #confirmed(lease: Lease, now: Date): Promise<Lease> {
    const fence: LeaseRecord = {
      key: FENCE_KEY,
      owner: 'ployz-fence',
      nonce: lease.record.nonce,
      purpose: 'fence',
      acquired_at: now.toISOString(),
      expires_at: now.toISOString(),
    };
    const last = await this.#bucket.lastRevisionAfterFence(lease.key, fence);
    if (last === lease.revision) return lease;
    const winner = await this.#bucket.getByKey(lease.key);
    throw held(winner?.value ?? lease.record, { raced: true });
  }

  async #createOrHeld(key: string, record: LeaseRecord): Promise<Lease> {
    try {
      const created = await this.#bucket.create(record);
      return { key, record, revision: created.revision };
    } catch (err) {
      if (err instanceof PloyzError && err.code === 'STORE_CONFLICT') {
        const winner = await this.#bucket.getByKey(key);
        if (winner) throw held(winner.value);
      }
      throw err;
    }
  }
}

/** The fence key of the lock bucket: an always-expired record no deploy lease is ever under. */
export const FENCE_KEY = 'cp.lock.fence';

function held(holder: LeaseRecord, options: { raced?: boolean } = {}): PloyzError {
  return new PloyzError(
    'DEPLOY_LOCK_HELD',
    options.raced
      ? `${holder.key} was taken by ${holder.owner} in the same instant as this acquire; wait for that deploy to finish or for the lease to expire`
      : `${holder.key} is held by ${holder.owner} until ${holder.expires_at}; wait for that deploy to finish or for the lease to expire`,
    {
      details: {
        key: holder.key,
        holder: holder.owner,
        purpose: holder.purpose,
        expires_at: holder.expires_at,
        ...(options.raced ? { raced: true } : {}),
      },
    },
  );
}

function lost(lease: Lease): PloyzError {
  return new PloyzError(
    'LEASE_LOST',
    `the lease ${lease.key} held by ${lease.record.owner} expired and was taken over or released; stop the work it guarded`,
    { details: { key: lease.key, owner: lease.record.owner } },
  );
}
