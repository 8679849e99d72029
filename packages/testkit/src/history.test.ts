import { describe, expect, it } from 'vitest';
import { commitViolations, type LeaseHold, leaseViolations } from './history.ts';

const hold = (client: string, from: number, until: number, revision: number): LeaseHold => ({
  client,
  nonce: `${client}-${revision}`,
  revision,
  from,
  until,
});

describe('lease history', () => {
  it('accepts holds one after another, touching ends included', () => {
    expect(leaseViolations([hold('a', 0, 10, 1), hold('b', 10, 20, 3), hold('c', 25, 30, 5)])).toEqual([]);
  });

  it('finds two holders at once, whatever the order of the log', () => {
    const v = leaseViolations([hold('b', 5, 12, 3), hold('a', 0, 10, 1)]);
    expect(v.map((x) => x.kind)).toEqual(['two_holders']);
    expect(v[0]?.detail).toContain('b (b-3) held from 5 while a (a-1) held until 10');
  });

  it('finds an overlap with a long hold that is not the previous one', () => {
    // a holds 0..100; b 10..20 overlaps a; c 30..40 overlaps a too.
    const v = leaseViolations([hold('a', 0, 100, 1), hold('b', 10, 20, 2), hold('c', 30, 40, 3)]);
    expect(v.filter((x) => x.kind === 'two_holders')).toHaveLength(2);
  });

  it('ignores holds acknowledged only after their expiry', () => {
    expect(leaseViolations([hold('a', 0, 10, 1), hold('b', 50, 5, 2)])).toEqual([]);
  });

  it('finds one revision acknowledged to two clients', () => {
    const v = leaseViolations([hold('a', 0, 10, 7), hold('b', 20, 30, 7)]);
    expect(v.map((x) => x.kind)).toEqual(['revision_twice']);
  });
});

describe('commit history', () => {
  it('accepts every acknowledged commit stored at its seq, and unknown outcomes either way', () => {
    const r = commitViolations(
      [
        { id: 'a', client: 'c1', seq: 1 },
        { id: 'b', client: 'c2', seq: null },
        { id: 'c', client: 'c2', seq: null },
        { id: 'd', client: 'c3', seq: 3 },
      ],
      [
        { id: 'a', seq: 1 },
        { id: 'b', seq: 2 },
        { id: 'd', seq: 3 },
      ],
    );
    expect(r).toEqual({ violations: [], acknowledged: 2, unknownStored: 1, unknownAbsent: 1 });
  });

  it('finds a lost, a moved, a doubled and a phantom commit', () => {
    const r = commitViolations(
      [
        { id: 'lost', client: 'c1', seq: 1 },
        { id: 'moved', client: 'c1', seq: 2 },
        { id: 'twice', client: 'c2', seq: 3 },
      ],
      [
        { id: 'moved', seq: 4 },
        { id: 'twice', seq: 3 },
        { id: 'twice', seq: 5 },
        { id: 'ghost', seq: 6 },
      ],
    );
    expect(r.violations.map((v) => v.kind).sort()).toEqual([
      'commit_twice',
      'lost_commit',
      'moved_commit',
      'phantom_commit',
    ]);
  });
});
