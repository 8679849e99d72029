import { isDeepStrictEqual } from 'node:util';
import { isPloyzError } from '@ployz/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.ts';

/** Rebuilds every object with its keys in a random order. */
function shuffleKeys(value: unknown, rand: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, rand));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value).sort(() => rand() - 0.5);
  return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, rand)]));
}

const json = fc.jsonValue({ noUnicodeString: false });

describe('canonicalJson', () => {
  it('sorts keys, drops undefined members, has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined, d: { z: 1, y: 2 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"d":{"y":2,"z":1}}',
    );
  });

  it('writes numbers in one stable form', () => {
    expect(canonicalJson([1.0, -0, 1e21, 0.1, 100, 1.5e-7])).toBe('[1,0,1e+21,0.1,100,1.5e-7]');
  });

  it('is independent of key order (property)', () => {
    fc.assert(
      fc.property(json, fc.integer(), (value, seed) => {
        let s = seed;
        const rand = () => {
          s = (s * 1103515245 + 12345) & 0x7fffffff;
          return s / 0x7fffffff;
        };
        expect(canonicalJson(shuffleKeys(value, rand))).toBe(canonicalJson(value));
      }),
    );
  });

  it('round-trips through JSON.parse to an equal value (property)', () => {
    fc.assert(
      fc.property(json, (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        // -0 is written as 0, which JSON.parse reads back as 0; toEqual treats them alike
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('is equal exactly for deep-equal values (property)', () => {
    fc.assert(
      fc.property(json, json, (a, b) => {
        const same = isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
        expect(canonicalJson(a) === canonicalJson(b)).toBe(same);
      }),
    );
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['bigint', 1n],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['undefined in a list', [1, undefined]],
    ['a function', { f: () => 1 }],
  ])('rejects %s with INVALID_ARGUMENT', (_name, value) => {
    try {
      canonicalJson(value);
      expect.unreachable();
    } catch (e) {
      expect(isPloyzError(e, 'INVALID_ARGUMENT')).toBe(true);
    }
  });

  it('rejects cycles but allows shared subtrees', () => {
    const shared = { a: 1 };
    expect(canonicalJson({ x: shared, y: shared })).toBe('{"x":{"a":1},"y":{"a":1}}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/cycle/);
  });

  it('accepts null-prototype objects (what the TOML parser returns)', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.b = 2;
    o.a = 1;
    expect(canonicalJson(o)).toBe('{"a":1,"b":2}');
  });
});
