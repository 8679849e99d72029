import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffMs, durabilitySettings, escapeToken, keys, unescapeToken } from '../src/index.ts';

describe('key scheme', () => {
  it('keeps safe tokens and escapes everything else reversibly', () => {
    expect(escapeToken('web-0_a')).toBe('web-0_a');
    expect(escapeToken('a.b')).toBe('a=2Eb');
    expect(escapeToken('a=b')).toBe('a=3Db');
    expect(escapeToken('a b*>')).toBe('a=20b=2A=3E');
    fc.assert(
      fc.property(fc.string({ minLength: 1, unit: 'grapheme' }), (s) => {
        const e = escapeToken(s);
        expect(e).toMatch(/^[A-Za-z0-9_=-]+$/);
        expect(unescapeToken(e)).toBe(s);
      }),
    );
  });

  it('refuses an empty token', () => {
    expect(() => escapeToken('')).toThrow(/empty/);
  });

  it('builds keys from escaped tokens', () => {
    expect(keys.instance('shop', 'web', 'i.1')).toBe('shop.web.i=2E1');
    expect(keys.deployLock('a.b')).toBe('cp.lock.deploy.a=2Eb');
  });
});

describe('reconnect backoff', () => {
  it('grows exponentially to the ceiling with jitter in the upper half', () => {
    expect(backoffMs(1, 100, 5000, () => 0)).toBe(50);
    expect(backoffMs(1, 100, 5000, () => 1)).toBe(100);
    expect(backoffMs(4, 100, 5000, () => 1)).toBe(800);
    expect(backoffMs(40, 100, 5000, () => 1)).toBe(5000);
    expect(backoffMs(40, 100, 5000, () => 0)).toBe(2500);
  });
});

describe('durability settings', () => {
  it('asks for fsync on >= 2.10 and never on 2.9', () => {
    expect(durabilitySettings('2.10.7', 1)).toEqual({ sync_interval: 'always', caveat: null });
    expect(durabilitySettings('v2.11.0', 1).sync_interval).toBe('always');
    const old = durabilitySettings('nats-server: v2.9.10', 1);
    expect(old.sync_interval).toBeUndefined();
    expect(old.caveat).toMatch(/replicas 3/);
    expect(durabilitySettings('2.9.10', 3).caveat).toBeNull();
  });
});
