import { fixtures } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { assertNoMoveSince, movementOf, planMove } from './move.ts';

const { commit, machine, volume } = fixtures;

const zfs = { driver: 'zfs' as const, root: 'tank/ployz' };
const machines = [machine('m1', { storage: zfs }), machine('m2', { storage: zfs })];
const record = volume('data', {
  driver: 'zfs',
  snapshots: [
    {
      deploy_id: 'dep-1',
      commit_id: 'dep-1.final',
      id: '111',
      at: '2026-12-03T00:00:00.000Z',
      bytes: 209_715_200,
    },
  ],
});
const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'returned';
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe('planMove', () => {
  it('names both machines, the size, the services that stop and the cutover', () => {
    const plan = planMove({ namespace: 'shop', volume: 'data', to: 'm2' }, record, machines, ['web']);
    expect(plan).toMatchObject({
      volume: 'data',
      from: 'm1',
      to: 'm2',
      driver: 'zfs',
      bytes: 209_715_200,
      services: ['web'],
    });
    expect(plan.cutover).toContain('web stop on m1 only for the increment');
  });

  it('refuses what cannot move, before anything changes', () => {
    const req = { namespace: 'shop', volume: 'data', to: 'm2' };
    expect(codeOf(() => planMove(req, null, machines, []))).toBe('NOT_FOUND');
    expect(codeOf(() => planMove({ ...req, to: 'm1' }, record, machines, []))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => planMove({ ...req, to: 'm9' }, record, machines, []))).toBe('INVALID_ARGUMENT');
    const draining = [machines[0], machine('m2', { storage: zfs, lifecycle: 'draining' })].flatMap((m) =>
      m ? [m] : [],
    );
    expect(codeOf(() => planMove(req, record, draining, []))).toBe('INVALID_ARGUMENT');
    const pending = { ...record, pending: { deploy_id: 'dep-2', pre_snapshot: null } };
    expect(codeOf(() => planMove(req, pending, machines, []))).toBe('INVALID_ARGUMENT');
    const btrfsTarget = [
      machine('m1', { storage: zfs }),
      machine('m2', { storage: { driver: 'btrfs', root: '/b' } }),
    ];
    expect(codeOf(() => planMove(req, record, btrfsTarget, []))).toBe('STORAGE_UNSUPPORTED');
    expect(codeOf(() => planMove(req, { ...record, driver: 'dir' }, machines, []))).toBe(
      'STORAGE_UNSUPPORTED',
    );
  });
});

describe('movement evidence and the rollback it forbids', () => {
  const plan = planMove({ namespace: 'shop', volume: 'data', to: 'm2' }, record, machines, ['web']);
  const moved = movementOf(plan, { snapshot: 'dep-3-cutover', id: '333' }, [200, 20]);

  it('carries from, to, the verified snapshot and guid, and the bytes of both passes', () => {
    expect(moved).toEqual({
      volume: 'data',
      slot: null,
      from_machine: 'm1',
      to_machine: 'm2',
      driver: 'zfs',
      snapshot: 'dep-3-cutover',
      guid: '333',
      bytes: 220,
      verified: true,
    });
  });

  it('a rollback to a deploy before the move is ROLLBACK_PAST_MOVE naming it; to the move or later is allowed', () => {
    const commits = [
      commit('dep-1.final', { deploy_id: 'dep-1' }),
      commit('dep-3.final', { deploy_id: 'dep-3', volume_movements: [moved] }),
      commit('dep-4.final', { deploy_id: 'dep-4' }),
    ];
    let error: unknown;
    try {
      assertNoMoveSince(commits, 'dep-1');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: 'ROLLBACK_PAST_MOVE',
      details: { move_deploy: 'dep-3', volumes: [{ volume: 'data', from: 'm1', to: 'm2' }] },
    });
    expect((error as Error).message).toContain('deploy dep-3 moved volume data from m1 to m2');
    expect(() => assertNoMoveSince(commits, 'dep-3')).not.toThrow();
    expect(() => assertNoMoveSince(commits, 'dep-4')).not.toThrow();
    expect(() => assertNoMoveSince(commits.slice(0, 1), 'dep-1')).not.toThrow();
    // Commit order decides, not id order: a move whose id sorts first (same millisecond) still counts.
    const tied = [
      commit('dep-9.final', { deploy_id: 'dep-9' }),
      commit('dep-0.final', { deploy_id: 'dep-0', volume_movements: [moved] }),
    ];
    expect(() => assertNoMoveSince(tied, 'dep-9')).toThrow(/deploy dep-0 moved volume data/);
  });
});
