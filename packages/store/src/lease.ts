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
      return { key, record, revision: created.revision };
    } catch (err) {
      if (!(err instanceof PloyzError) || err.code !== 'STORE_CONFLICT') throw err;
    }
    const current = await this.#bucket.getByKey(key);
    if (current === null) {
      // Released between our create and our read: one more create, and a conflict is a loss.
      return this.#createOrHeld(key, record);
    }
    if (Date.parse(current.value.expires_at) > now.getTime()) throw held(current.value);
    try {
      const taken = await this.#bucket.update(record, current.revision);
      return { key, record, revision: taken.revision };
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

function held(holder: LeaseRecord): PloyzError {
  return new PloyzError(
    'DEPLOY_LOCK_HELD',
    `${holder.key} is held by ${holder.owner} until ${holder.expires_at}; wait for that deploy to finish or for the lease to expire`,
    {
      details: {
        key: holder.key,
        holder: holder.owner,
        purpose: holder.purpose,
        expires_at: holder.expires_at,
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
