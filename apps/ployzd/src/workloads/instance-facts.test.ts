import type { InstanceRecord } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { afterCheck, factMismatch, isChecked } from './instance-facts.ts';

const record: InstanceRecord = {
  id: 'shop-web-0-aaaa',
  namespace: 'shop',
  service: 'web',
  slot: 0,
  machine: 'm1',
  revision: 'rev-0123456789abcdef',
  deploy: 'dep-0test',
  container_id: 'c1',
  ip: '10.210.96.16',
  ip6: null,
  ports: { http: 8080 },
  state: 'running',
  ready: true,
  draining: false,
  error: null,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
};
const at = '2026-01-02T00:00:00.000Z';
const fact = { container_id: 'c1', running: true, ip: '10.210.96.16' };

describe('instance facts', () => {
  it('names the first way a record disagrees with the engine', () => {
    expect(factMismatch(record, fact)).toBeNull();
    expect(factMismatch(record, undefined)).toBe('container_missing');
    expect(factMismatch(record, { ...fact, container_id: 'c2' })).toBe('container_replaced');
    expect(factMismatch(record, { ...fact, running: false, ip: null })).toBe('not_running');
    expect(factMismatch(record, { ...fact, ip: '10.210.96.17' })).toBe('address_changed');
  });

  it('checks only running instances of this machine', () => {
    expect(isChecked(record, 'm1')).toBe(true);
    expect(isChecked(record, 'm2')).toBe(false);
    expect(isChecked({ ...record, state: 'starting' }, 'm1')).toBe(false);
  });

  it('marks a mismatch at once and clears only its own error once verified', () => {
    const unverified = afterCheck(record, 'not_running', at);
    expect(unverified).toEqual({ ...record, error: 'unverified: not_running', updated_at: at });
    if (unverified === undefined) throw new Error('unreachable');
    expect(afterCheck(unverified, 'not_running', at)).toBeUndefined(); // no write when nothing changes
    expect(afterCheck(unverified, 'address_changed', at)?.error).toBe('unverified: address_changed');
    expect(afterCheck(unverified, null, at)).toEqual({ ...record, updated_at: at });
    expect(afterCheck(record, null, at)).toBeUndefined();
    const failed = { ...record, error: 'readiness failed' };
    expect(afterCheck(failed, null, at)).toBeUndefined();
    expect(afterCheck(failed, 'not_running', at)).toBeUndefined();
  });
});
