/**
 * The records an apply writes, built from the plan. Pure: the apply steps only store them.
 * Status and phase records carry the deploy's progress; an instance record is one candidate.
 */
import type { DeployStatusRecord, InstanceRecord, PhaseRecord } from '@ployz/types';
import type { DeployPlan, ServicePlan, SlotPlan } from './plan.ts';
import type { DeployService } from './spec.ts';

export interface DeployIdentity {
  deployId: string;
  actor: string;
  rollbackOf: string | null;
}

/** Step 4: the first durable write of a deploy. */
export function applyingStatus(plan: DeployPlan, who: DeployIdentity, at: string): DeployStatusRecord {
  return {
    deploy_id: who.deployId,
    namespace: plan.namespace,
    state: 'applying',
    manifest_hash: plan.manifest_hash,
    phases: plan.phases.map((p) => p.id),
    commits: [],
    rollback_of: who.rollbackOf,
    actor: who.actor,
    step: 4,
    error: null,
    started_at: at,
    updated_at: at,
  };
}

/** Step 4: one `pending` record per phase, listing the starts and stops it owns. */
export function pendingPhases(plan: DeployPlan, deployId: string, at: string): PhaseRecord[] {
  return plan.phases.map((p) => {
    const owned = plan.services.filter((s) => s.phase === p.id);
    return {
      deploy_id: deployId,
      phase: p.id,
      index: p.index,
      commit_policy: p.commit_policy,
      services: owned.map((s) => s.service),
      volumes: [],
      work: [
        ...owned.flatMap((s) =>
          s.slots
            .filter((x) => x.action === 'start')
            .map((x) => ({
              kind: 'start' as const,
              service: s.service,
              slot: x.slot,
              machine: x.machine,
              instance: x.instance,
            })),
        ),
        ...owned.flatMap((s) =>
          s.stops.map((x) => ({
            kind: 'stop' as const,
            service: s.service,
            slot: x.slot,
            machine: x.machine,
            instance: x.instance,
          })),
        ),
      ],
      state: 'pending',
      commit_id: null,
      error: null,
      updated_at: at,
    };
  });
}

/** Step 5: the record of a candidate about to start (not ready, no container yet). */
export function candidateRecord(
  namespace: string,
  svc: ServicePlan & { revision: string },
  slot: SlotPlan,
  spec: DeployService,
  deployId: string,
  at: string,
): InstanceRecord {
  return {
    id: slot.instance,
    namespace,
    service: svc.service,
    slot: slot.slot,
    machine: slot.machine,
    revision: svc.revision,
    deploy: deployId,
    container_id: null,
    ip: null,
    ip6: null,
    ports: { ...spec.ports },
    state: 'starting',
    ready: false,
    draining: false,
    error: null,
    created_at: at,
    updated_at: at,
  };
}
