import { PloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { type StoreRetryPolicy, sameRecord, withStoreRetry } from './store-retry.ts';

const unavailable = () => new PloyzError('STORE_UNAVAILABLE', 'no answer');
const conflict = () => new PloyzError('STORE_CONFLICT', 'moved on');

function policy(reachable: boolean, windowMs = 5000) {
  const retries: string[] = [];
  const p: StoreRetryPolicy = {
    windowMs,
    backoffMs: 1,
    quorumReachable: async () => reachable,
    onRetry: (what, attempt) => retries.push(`${what}#${attempt}`),
  };
  return { p, retries };
}

/** A call that fails with the given errors in turn, then answers `value`. */
function failing<T>(errors: Error[], value: T) {
  let calls = 0;
  return {
    calls: () => calls,
    call: async () => {
      calls++;
      const e = errors.shift();
      if (e) throw e;
      return value;
    },
  };
}

describe('withStoreRetry', () => {
  it('retries a store without answer while a majority of members is reachable', async () => {
    const { p, retries } = policy(true);
    const c = failing([unavailable(), new PloyzError('STORE_NO_QUORUM', 'election')], 7);
    await expect(withStoreRetry(p, 'w', c.call)).resolves.toBe(7);
    expect(c.calls()).toBe(3);
    expect(retries).toEqual(['w#1', 'w#2']);
  });

  it('fails at once when the majority is gone, or the error is not the store being away', async () => {
    const away = failing([new PloyzError('STORE_NO_QUORUM', 'two lost')], 1);
    await expect(withStoreRetry(policy(false).p, 'w', away.call)).rejects.toMatchObject({
      code: 'STORE_NO_QUORUM',
    });
    expect(away.calls()).toBe(1);
    const bad = failing([new PloyzError('INVALID_ARGUMENT', 'bad')], 1);
    await expect(withStoreRetry(policy(true).p, 'w', bad.call)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(bad.calls()).toBe(1);
  });

  it('gives up after its window', async () => {
    const c = failing(Array.from({ length: 100 }, unavailable), 1);
    await expect(withStoreRetry(policy(true, 30).p, 'w', c.call)).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    });
    expect(c.calls()).toBeGreaterThan(1);
    expect(c.calls()).toBeLessThan(100);
  });

  it('an unconfirmed write then a conflict: ours if read back equal, else the conflict', async () => {
    const ours = failing([unavailable(), conflict()], 1);
    await expect(withStoreRetry(policy(true).p, 'w', ours.call, async () => ({ value: 42 }))).resolves.toBe(
      42,
    );
    const theirs = failing([unavailable(), conflict()], 1);
    await expect(withStoreRetry(policy(true).p, 'w', theirs.call, async () => null)).rejects.toMatchObject({
      code: 'STORE_CONFLICT',
    });
    // A conflict on the first attempt is never excused: nothing of ours can be there.
    let asked = false;
    const first = failing([conflict()], 1);
    await expect(
      withStoreRetry(policy(true).p, 'w', first.call, async () => {
        asked = true;
        return { value: 1 };
      }),
    ).rejects.toMatchObject({ code: 'STORE_CONFLICT' });
    expect(asked).toBe(false);
  });

  it('sameRecord compares what the store keeps (JSON), not key order or undefined fields', () => {
    expect(sameRecord({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1, d: undefined })).toBe(true);
    expect(sameRecord({ a: 1 }, { a: 2 })).toBe(false);
  });
});
