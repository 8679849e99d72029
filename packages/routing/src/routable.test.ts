import { describe, expect, it } from 'vitest';
import { instance, machine, REV_A, REV_B, release } from '../test/records.ts';
import { isRoutable, unroutableReason } from './routable.ts';

describe('isRoutable', () => {
  const rel = release('web', REV_A, [{ slot: 0, instance: 'web-0' }]);
  const m1 = machine('m1');

  it('accepts a ready, healthy instance that is the active one in its slot', () => {
    expect(isRoutable(instance('web-0', 'web', 0, REV_A), rel, m1)).toBe(true);
  });

  it.each([
    ['not_ready', { ready: false }],
    ['draining', { draining: true }],
    ['error', { error: 'crashed' }],
    ['no_ip', { ip: null }],
    ['not_running', { state: 'stopping' as const }],
    ['revision_mismatch', { revision: REV_B }],
    ['slot_mismatch', { slot: 1 }],
    ['slot_mismatch', { machine: 'm2' }],
    ['slot_mismatch', { id: 'web-old' }],
  ])('rejects with %s', (reason, overrides) => {
    const i = { ...instance('web-0', 'web', 0, REV_A), ...overrides };
    expect(unroutableReason(i, rel, m1.id === i.machine ? m1 : machine(i.machine))).toBe(reason);
    expect(isRoutable(i, rel, m1)).toBe(false);
  });

  it('rejects without a release, with another service release, or an unknown/removed machine', () => {
    const i = instance('web-0', 'web', 0, REV_A);
    expect(unroutableReason(i, undefined, m1)).toBe('no_release');
    expect(unroutableReason(i, release('api', REV_A, [{ slot: 0, instance: 'web-0' }]), m1)).toBe(
      'release_mismatch',
    );
    expect(unroutableReason(i, rel, undefined)).toBe('machine_unknown');
    expect(unroutableReason(i, rel, machine('m1', { lifecycle: 'removed' }))).toBe('machine_removed');
    expect(unroutableReason(i, rel, machine('m1', { lifecycle: 'draining' }))).toBeNull();
  });
});
