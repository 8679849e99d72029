import { DeployId, InstanceId } from '@ployz/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commitId, deployId, deployIdTime, instanceId } from './ids.ts';

const time = fc.integer({ min: 0, max: 36 ** 9 - 1 });

describe('deployId', () => {
  it('matches the DeployId record schema and decodes its time (property)', () => {
    fc.assert(
      fc.property(time, (t) => {
        const id = deployId(t);
        expect(DeployId.safeParse(id).success).toBe(true);
        expect(id).toMatch(/^dep-[0-9a-z]{17}$/);
        expect(deployIdTime(id)).toBe(t);
      }),
    );
  });

  it('sorts as strings in time order (property)', () => {
    fc.assert(
      fc.property(time, time, (a, b) => {
        fc.pre(a !== b);
        const [ia, ib] = [deployId(a), deployId(b)];
        expect(ia < ib).toBe(a < b);
      }),
    );
  });

  it('does not repeat within one millisecond', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => deployId(1_800_000_000_000)));
    expect(ids.size).toBe(2000);
  });

  it('rejects times it cannot encode', () => {
    expect(() => deployId(-1)).toThrow(/out of range/);
    expect(() => deployId(36 ** 9)).toThrow(/out of range/);
    expect(deployIdTime('dep-1')).toBeNull();
  });
});

describe('instanceId and commitId', () => {
  it('instance ids are readable, unique and match the record schema', () => {
    const a = instanceId({ namespace: 'demo', service: 'hello', slot: 0 });
    const b = instanceId({ namespace: 'demo', service: 'hello', slot: 0 });
    expect(a).toMatch(/^demo-hello-0-[0-9a-z]{8}$/);
    expect(a).not.toBe(b);
    expect(InstanceId.safeParse(a).success).toBe(true);
    expect(() => instanceId({ namespace: 'demo', service: 'hello', slot: -1 })).toThrow(/slot/);
  });

  it('commit ids are deterministic per deploy and phase', () => {
    expect(commitId('dep-abc', { kind: 'final' })).toBe('dep-abc-final');
    expect(commitId('dep-abc', { kind: 'checkpoint', phase: 'db' })).toBe('dep-abc-cp-db');
  });
});
