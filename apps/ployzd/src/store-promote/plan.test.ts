import { isPloyzError, type MachineRecord } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { assertApplicable, type MachineProbe, type PromotionPlanInput, planPromotion } from './plan.ts';

function record(
  id: string,
  region = 'home',
  lifecycle: MachineRecord['lifecycle'] = 'active',
): MachineRecord {
  return {
    id,
    public_key: `${'A'.repeat(42)}A=`,
    overlay_ip: `fd70:6c6f:797a:${id.slice(1)}::1`,
    subnet: `10.210.${id.slice(1)}.0/24`,
    endpoints: [],
    region,
    region_role: 'home_data',
    lifecycle,
    created_at: '2026-12-03T00:00:00.000Z',
    updated_at: '2026-12-03T00:00:00.000Z',
  };
}
const ok: MachineProbe = { reachable: true, rttMs: 1.5, healthy: true };
const input: PromotionPlanInput = {
  currentReplicas: 1,
  requestedReplicas: 3,
  currentStorage: 'm1',
  machines: ['m1', 'm2', 'm3'],
  records: [record('m1', 'a'), record('m2', 'b'), record('m3', 'c'), record('m4', 'a', 'draining')],
  probes: { m1: ok, m2: ok, m3: ok },
  assets: [
    {
      asset: 'cp_deploy_commits_auth-default',
      kind: 'stream',
      messages: 60,
      bytes: 30_000,
      lastId: 'dep-59.final',
    },
    { asset: 'cp_locks_auth-default', kind: 'kv', messages: 2, bytes: 400, lastId: 'cp.lock.deploy.shop' },
  ],
};

function code(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    return isPloyzError(err) ? err.code : 'not a PloyzError';
  }
}

describe('planPromotion', () => {
  it('lists what moves and every guardrail, applicable when all pass', () => {
    const plan = planPromotion(input);
    expect(plan.refusal).toBeNull();
    expect(plan.messages).toBe(62);
    expect(plan.bytes).toBe(30_400);
    expect(plan.assets.map((a) => a.asset)).toEqual([
      'cp_deploy_commits_auth-default',
      'cp_locks_auth-default',
    ]);
    expect(plan.members.map((m) => [m.machine, m.holds_store_now])).toEqual([
      ['m1', true],
      ['m2', false],
      ['m3', false],
    ]);
    expect(plan.regions).toEqual(['a', 'b', 'c']);
    expect(plan.checks.filter((c) => c.check === 'rtt')).toHaveLength(3);
    expect(plan.checks.every((c) => c.ok)).toBe(true);
    expect(() => assertApplicable(plan)).not.toThrow();
  });

  it('never R=2; only 1 → 3', () => {
    expect(code(() => planPromotion({ ...input, requestedReplicas: 2 }))).toBe('REPLICAS_INVALID');
    expect(code(() => planPromotion({ ...input, requestedReplicas: 4 }))).toBe('REPLICAS_INVALID');
    expect(code(() => planPromotion({ ...input, requestedReplicas: 5 }))).toBe('STORE_PROMOTE_UNSUPPORTED');
    expect(code(() => planPromotion({ ...input, currentReplicas: 3 }))).toBe('STORE_PROMOTE_UNSUPPORTED');
    expect(code(() => planPromotion({ ...input, requestedReplicas: 1 }))).toBe('STORE_PROMOTE_UNSUPPORTED');
  });

  it('three distinct, known, active machines', () => {
    expect(code(() => planPromotion({ ...input, machines: ['m1', 'm2'] }))).toBe(
      'STORE_PROMOTE_MACHINES_INVALID',
    );
    expect(code(() => planPromotion({ ...input, machines: ['m1', 'm2', 'm2'] }))).toBe(
      'STORE_PROMOTE_MACHINES_INVALID',
    );
    expect(code(() => planPromotion({ ...input, machines: ['m1', 'm2', 'm9'] }))).toBe(
      'STORE_PROMOTE_MACHINES_INVALID',
    );
    expect(code(() => planPromotion({ ...input, machines: ['m1', 'm2', 'm4'] }))).toBe(
      'STORE_PROMOTE_MACHINES_INVALID',
    );
  });

  it('unreachable, unhealthy or far machines: the plan prints, applying refuses', () => {
    const plan = planPromotion({
      ...input,
      probes: {
        m1: ok,
        m2: { reachable: false, rttMs: null, healthy: false, problem: 'RPC_TIMEOUT' },
        m3: { reachable: true, rttMs: 80, healthy: true },
      },
    });
    expect(plan.refusal?.code).toBe('STORE_PROMOTE_UNHEALTHY');
    expect(plan.refusal?.message).toContain('m2 reachable: no answer (RPC_TIMEOUT)');
    expect(plan.refusal?.message).toContain('m3 rtt: 80.0 ms (bound 50 ms)');
    expect(code(() => assertApplicable(plan))).toBe('STORE_PROMOTE_UNHEALTHY');
    const unhealthy = planPromotion({
      ...input,
      probes: {
        ...input.probes,
        m3: { reachable: true, rttMs: 1, healthy: false, problem: 'ployz-nats unhealthy' },
      },
    });
    expect(unhealthy.refusal?.message).toContain('m3 healthy: ployz-nats unhealthy');
    expect(planPromotion({ ...input, rttBoundMs: 1 }).refusal?.code).toBe('STORE_PROMOTE_UNHEALTHY');
  });

  it('one region is a warning, not a refusal', () => {
    const plan = planPromotion({ ...input, records: [record('m1'), record('m2'), record('m3')] });
    const fd = plan.checks.find((c) => c.check === 'failure_domains');
    expect(fd?.ok).toBe(false);
    expect(fd?.blocking).toBe(false);
    expect(fd?.detail).toContain('all three in region home');
    expect(plan.refusal).toBeNull();
  });
});
