/**
 * Riding out a store member lost mid-deploy (issue 19: "cut one storage machine mid-deploy → the
 * deploy commits"). At R3 a write whose stream leader was on the lost machine gets no answer
 * until the two survivors elect a new leader (seconds on nats-server 2.9: the lost peer is silent,
 * not gone), and it surfaces as STORE_UNAVAILABLE or STORE_NO_QUORUM. While this machine still
 * reaches a majority of the members (`quorumReachable`), such a failure is retried for a bounded
 * window; with fewer, it is final at once — two lost members stay "refused within seconds".
 *
 * A retried write is safe because every store write is compare-and-set or idempotent: a record
 * write whose first attempt was applied after all gets STORE_CONFLICT on its retry, and then the
 * record read back equal to ours (`applied`) means it was ours; a commit append of the identical
 * commit is a no-op; routing events carry whole records, so one applied twice changes nothing.
 */
import { isDeepStrictEqual } from 'node:util';
import { isPloyzError } from '@ployz/types';

export interface StoreRetryPolicy {
  /** How long one store call keeps retrying after its first failure. */
  windowMs: number;
  /** Whether a majority of the store members answers from here; checked before every retry. */
  quorumReachable(): Promise<boolean>;
  /** Pause between attempts (grows to 1 s). */
  backoffMs?: number;
  /** Told of every retry (ployzd logs it). */
  onRetry?(what: string, attempt: number, error: unknown): void;
}

/** No retry: a standalone store (R1) fails as before. */
export const NO_STORE_RETRY: StoreRetryPolicy = { windowMs: 0, quorumReachable: async () => false };

function transient(err: unknown): boolean {
  return isPloyzError(err, 'STORE_UNAVAILABLE') || isPloyzError(err, 'STORE_NO_QUORUM');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `call`, retrying transient store failures within the policy's window. `applied` (for
 * compare-and-set writes) is asked after a STORE_CONFLICT that follows a failed attempt: it
 * returns `{ value }` (the call's result) when the stored state is the one this write meant to
 * leave, else null (the conflict is real and is thrown).
 */
export async function withStoreRetry<T>(
  policy: StoreRetryPolicy,
  what: string,
  call: () => Promise<T>,
  applied?: () => Promise<{ value: T } | null>,
): Promise<T> {
  const deadline = Date.now() + policy.windowMs;
  let uncertain = false;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      // A compare-and-set refused after an unconfirmed attempt (a lease renew says LEASE_LOST).
      if (
        uncertain &&
        applied !== undefined &&
        (isPloyzError(err, 'STORE_CONFLICT') || isPloyzError(err, 'LEASE_LOST'))
      ) {
        const mine = await applied();
        if (mine !== null) return mine.value;
        throw err;
      }
      if (!transient(err) || Date.now() >= deadline || !(await policy.quorumReachable())) throw err;
      uncertain = true;
      policy.onRetry?.(what, attempt, err);
      await sleep(Math.min((policy.backoffMs ?? 250) * attempt, 1000));
    }
  }
}

/** Whether a record read back is the one we wrote (JSON round trip: what the store keeps). */
export function sameRecord(stored: unknown, ours: unknown): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(stored)), JSON.parse(JSON.stringify(ours)));
}
