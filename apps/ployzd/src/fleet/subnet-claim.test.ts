import { describe, expect, it } from 'vitest';
import { freeSubnets } from './subnet-claim.ts';

describe('freeSubnets', () => {
  it('walks the /24s of the range in order, skipping the taken ones', () => {
    const free = [...freeSubnets('10.210.0.0/22', new Set(['10.210.0.0/24', '10.210.2.0/24']))];
    expect(free).toEqual(['10.210.1.0/24', '10.210.3.0/24']);
    expect([...freeSubnets('10.210.0.0/16', new Set())]).toHaveLength(256);
    expect([...freeSubnets('10.9.9.0/24', new Set(['10.9.9.0/24']))]).toEqual([]);
  });

  it('refuses a range smaller than a /24', () => {
    expect(() => [...freeSubnets('10.0.0.0/25', new Set())]).toThrow(/must be \/24 or larger/);
  });
});
