/**
 * The promotion plan (`ployzctl machine storage promote --replicas 3 <m1> <m2> <m3>`), pure: what
 * moves (each asset with its message count and bytes, from @ployz/store's `planMigration`) and
 * the guardrails, each shown with its outcome. Refusals:
 *
 * - a replica count other than 1, 3 or 5 (2 above all) → REPLICAS_INVALID;
 * - anything but 1 → 3 (1 → 5, a store already at 3) → STORE_PROMOTE_UNSUPPORTED;
 * - not three distinct, known, active machines → STORE_PROMOTE_MACHINES_INVALID;
 * - a machine unreachable now, with an unhealthy data plane, or farther than the RTT bound →
 *   the plan is still returned (so it can be printed) with `refusal` STORE_PROMOTE_UNHEALTHY, and
 *   `assertApplicable` throws it.
 *
 * Failure domains are the machines' regions: three machines in one region is allowed (a fleet on
 * one box is one region) but the plan says that a region's loss takes the quorum with it.
 */
import type { MachineRecord } from '@ployz/types';
import { PloyzError } from '@ployz/types';

/** Raft commits wait for a majority round trip: over this the plan refuses (a stated bound). */
export const DEFAULT_RTT_BOUND_MS = 50;

export interface MachineProbe {
  /** Answered its ping over the mesh just now. */
  reachable: boolean;
  /** Round trip of that ping from the coordinator, ms (null: no answer). */
  rttMs: number | null;
  /** Its data plane's components are all running and healthy (from its `status`). */
  healthy: boolean;
  /** Why not, when not (e.g. `RPC_TIMEOUT`, `ployz-nats unhealthy`). */
  problem?: string;
}

export interface PlannedAsset {
  asset: string;
  kind: 'kv' | 'stream';
  messages: number;
  bytes: number;
  lastId: string | null;
}

export interface PromotionPlanInput {
  currentReplicas: number;
  requestedReplicas: number;
  /** The machine holding the standalone store now. */
  currentStorage: string;
  /** As given on the command line, in order. */
  machines: readonly string[];
  records: readonly MachineRecord[];
  probes: Readonly<Record<string, MachineProbe>>;
  assets: readonly PlannedAsset[];
  rttBoundMs?: number;
}

export interface PlannedMember {
  machine: string;
  overlay_ip: string;
  region: string;
  region_role: string;
  reachable: boolean;
  healthy: boolean;
  rtt_ms: number | null;
  holds_store_now: boolean;
}

export interface PlanCheck {
  check: 'distinct' | 'reachable' | 'healthy' | 'rtt' | 'failure_domains';
  machine: string | null;
  ok: boolean;
  /** A failed `failure_domains` check is a warning, never a refusal. */
  blocking: boolean;
  detail: string;
}

export interface PromotionPlan {
  from: 1;
  to: 3;
  currentStorage: string;
  members: PlannedMember[];
  regions: string[];
  rttBoundMs: number;
  assets: PlannedAsset[];
  messages: number;
  bytes: number;
  checks: PlanCheck[];
  /** Null: `--yes` may apply it. */
  refusal: { code: 'STORE_PROMOTE_UNHEALTHY'; message: string } | null;
}

export function validatePromotionReplicas(current: number, requested: number): void {
  if (![1, 3, 5].includes(requested)) {
    throw new PloyzError(
      'REPLICAS_INVALID',
      `replicas must be 1, 3 or 5, never ${requested}: ${requested === 2 ? 'two replicas lose the quorum with either machine' : 'an even or out-of-range count has no safe majority'}`,
      { details: { requested } },
    );
  }
  if (current !== 1 || requested !== 3) {
    throw new PloyzError(
      'STORE_PROMOTE_UNSUPPORTED',
      `only 1 → 3 replicas is supported; the store is at ${current} and ${requested} was asked${current === requested ? ' (nothing to do)' : ''}`,
      { details: { current, requested } },
    );
  }
}

export function planPromotion(input: PromotionPlanInput): PromotionPlan {
  validatePromotionReplicas(input.currentReplicas, input.requestedReplicas);
  const rttBoundMs = input.rttBoundMs ?? DEFAULT_RTT_BOUND_MS;
  const byId = new Map(input.records.map((r) => [r.id, r]));
  const problems: string[] = [];
  if (input.machines.length !== 3) problems.push(`${input.machines.length} machines named, 3 needed`);
  if (new Set(input.machines).size !== input.machines.length) problems.push('a machine is named twice');
  for (const id of new Set(input.machines)) {
    const record = byId.get(id);
    if (!record) problems.push(`${id}: no such machine`);
    else if (record.lifecycle !== 'active') problems.push(`${id}: ${record.lifecycle}, not active`);
  }
  if (problems.length > 0) {
    throw new PloyzError(
      'STORE_PROMOTE_MACHINES_INVALID',
      `cannot promote the store onto these machines: ${problems.join('; ')}`,
      {
        details: { machines: [...input.machines], problems },
      },
    );
  }
  const members: PlannedMember[] = input.machines.map((id) => {
    const record = byId.get(id) as MachineRecord;
    const probe = input.probes[id] ?? {
      reachable: false,
      rttMs: null,
      healthy: false,
      problem: 'not probed',
    };
    return {
      machine: id,
      overlay_ip: record.overlay_ip,
      region: record.region,
      region_role: record.region_role,
      reachable: probe.reachable,
      healthy: probe.healthy,
      rtt_ms: probe.rttMs,
      holds_store_now: id === input.currentStorage,
    };
  });
  const checks: PlanCheck[] = [
    { check: 'distinct', machine: null, ok: true, blocking: true, detail: 'three distinct active machines' },
  ];
  for (const m of members) {
    const probe = input.probes[m.machine];
    checks.push({
      check: 'reachable',
      machine: m.machine,
      ok: m.reachable,
      blocking: true,
      detail: m.reachable ? 'answered now' : `no answer (${probe?.problem ?? 'not probed'})`,
    });
    checks.push({
      check: 'healthy',
      machine: m.machine,
      ok: m.reachable && m.healthy,
      blocking: true,
      detail: m.healthy ? 'data plane healthy' : (probe?.problem ?? 'data plane not healthy'),
    });
    const rttOk = m.rtt_ms !== null && m.rtt_ms <= rttBoundMs;
    checks.push({
      check: 'rtt',
      machine: m.machine,
      ok: rttOk,
      blocking: true,
      detail:
        m.rtt_ms === null ? 'no round trip measured' : `${m.rtt_ms.toFixed(1)} ms (bound ${rttBoundMs} ms)`,
    });
  }
  const regions = [...new Set(members.map((m) => m.region))].sort();
  checks.push({
    check: 'failure_domains',
    machine: null,
    ok: regions.length >= 2,
    blocking: false,
    detail:
      regions.length >= 2
        ? `regions ${regions.join(', ')}: losing ${regions.length === 3 ? 'any one region' : 'the region with one member'} keeps the quorum`
        : `all three in region ${regions[0]}: losing that region loses the quorum`,
  });
  const failed = checks.filter((c) => c.blocking && !c.ok);
  const assets = input.assets.map((a) => ({ ...a }));
  return {
    from: 1,
    to: 3,
    currentStorage: input.currentStorage,
    members,
    regions,
    rttBoundMs,
    assets,
    messages: assets.reduce((n, a) => n + a.messages, 0),
    bytes: assets.reduce((n, a) => n + a.bytes, 0),
    checks,
    refusal:
      failed.length === 0
        ? null
        : {
            code: 'STORE_PROMOTE_UNHEALTHY',
            message: `not promoting now: ${failed.map((c) => `${c.machine ?? ''} ${c.check}: ${c.detail}`.trim()).join('; ')}`,
          },
  };
}

/** Throws the plan's refusal (what `--yes` does before applying anything). */
export function assertApplicable(plan: PromotionPlan): void {
  if (plan.refusal === null) return;
  throw new PloyzError(plan.refusal.code, plan.refusal.message, {
    details: { checks: plan.checks.filter((c) => c.blocking && !c.ok) },
  });
}
