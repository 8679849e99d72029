import type { MachineRecord } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { type ApplyStep, applySteps, failureOutcome } from './apply.ts';
import { planPromotion } from './plan.ts';

const base: MachineRecord = {
  id: 'm0',
  public_key: `${'B'.repeat(42)}B=`,
  overlay_ip: 'fd70:6c6f:797a:1::1',
  subnet: '10.210.1.0/24',
  endpoints: [],
  region: 'home',
  region_role: 'home_data',
  lifecycle: 'active',
  created_at: '2026-12-03T00:00:00.000Z',
  updated_at: '2026-12-03T00:00:00.000Z',
};
const records: MachineRecord[] = ['m1', 'm2', 'm3', 'm4', 'm5'].map((id, i) => ({
  ...base,
  id,
  overlay_ip: `fd70:6c6f:797a:${i + 1}::1`,
  lifecycle: id === 'm5' ? 'draining' : 'active',
}));
const healthy = { reachable: true, rttMs: 2, healthy: true };

function plan(currentStorage: string, machines: string[]) {
  return planPromotion({
    currentReplicas: 1,
    requestedReplicas: 3,
    currentStorage,
    machines,
    records,
    probes: Object.fromEntries(machines.map((m) => [m, healthy])),
    assets: [],
  });
}

function names(steps: ApplyStep[]): string[] {
  return steps.map((s) =>
    'machine' in s ? `${s.step}:${s.machine}${'old_storage' in s && s.old_storage ? '(old)' : ''}` : s.step,
  );
}

describe('applySteps', () => {
  it('record before any member, members before the leader, the commit point before the freeze, the old storage machine switched last', () => {
    expect(names(applySteps({ plan: plan('m1', ['m1', 'm2', 'm3']), coordinator: 'm1', records }))).toEqual([
      'check_plan',
      'record',
      'no_deploys',
      'start_member:m1',
      'start_member:m2',
      'start_member:m3',
      'wait_leader',
      'migrate',
      'switched',
      'freeze:m1',
      'catch_up',
      'switch_machine:m2',
      'switch_machine:m3',
      'switch_machine:m4',
      'switch_machine:m1(old)',
    ]);
  });

  it("the coordinator's member starts first; a non-member storage machine is switched after the others, the coordinator last; draining machines are not switched", () => {
    const steps = applySteps({ plan: plan('m4', ['m1', 'm2', 'm3']), coordinator: 'm3', records });
    expect(
      names(steps).filter((s) => s.startsWith('start_member') || s.startsWith('switch_machine')),
    ).toEqual([
      'start_member:m3',
      'start_member:m1',
      'start_member:m2',
      'switch_machine:m1',
      'switch_machine:m2',
      'switch_machine:m4(old)',
      'switch_machine:m3',
    ]);
    expect(steps).toContainEqual({ step: 'wait_leader', members: ['m1', 'm2', 'm3'] });
    expect(steps).toContainEqual({ step: 'freeze', machine: 'm4' });
  });
});

describe('failureOutcome', () => {
  const steps = applySteps({ plan: plan('m1', ['m1', 'm2', 'm3']), coordinator: 'm1', records });
  const at = (name: string) => {
    const s = steps.find((x) => names([x])[0] === name);
    if (!s) throw new Error(`no step ${name}`);
    return s;
  };

  it('before the commit point: the old store, untouched and authoritative; members this run started are removed', () => {
    expect(failureOutcome(at('check_plan'), 'STORE_PROMOTE_UNHEALTHY')).toEqual({
      authority: 'old',
      cleanup: 'none',
      record: 'unchanged',
      next: 'fix_and_plan_again',
    });
    // Another coordinator's promotion: its members are not this run's to remove.
    expect(failureOutcome(at('record'), 'STORE_PROMOTING')).toMatchObject({
      authority: 'old',
      cleanup: 'none',
      next: 'promote_again',
    });
    expect(failureOutcome(at('no_deploys'), 'DEPLOY_LOCK_HELD')).toMatchObject({
      authority: 'old',
      cleanup: 'none',
      record: 'failed',
    });
    for (const name of ['start_member:m2', 'wait_leader', 'migrate']) {
      expect(failureOutcome(at(name), 'STORE_MIGRATION_FAILED'), name).toEqual({
        authority: 'old',
        cleanup: 'remove_members',
        record: 'failed',
        next: 'promote_again',
      });
    }
  });

  it('at and after the commit point: the members stay; the next run finishes, or the switch-over is run again', () => {
    expect(failureOutcome(at('switched'), 'STORE_UNAVAILABLE')).toMatchObject({ cleanup: 'none' });
    for (const name of ['freeze:m1', 'catch_up']) {
      expect(failureOutcome(at(name), 'STORE_MIGRATION_FAILED'), name).toEqual({
        authority: 'new',
        cleanup: 'none',
        record: 'switched',
        next: 'finish_promotion',
      });
    }
    for (const name of ['switch_machine:m3', 'switch_machine:m1(old)']) {
      expect(failureOutcome(at(name), 'RPC_TIMEOUT'), name).toMatchObject({
        authority: 'new',
        cleanup: 'none',
        next: 'switch_over_again',
      });
    }
  });
});
