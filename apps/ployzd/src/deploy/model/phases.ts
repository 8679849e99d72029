/**
 * The phases a plan runs. Pure. Their order is the manifest's: @ployz/types puts parsed phases
 * in execution order (every phase after the phases it names, ties by declaration) and rejects
 * cycles, unknown phases and a service in two phases (manifest-rules.ts), so it is decided once,
 * there. Every service no phase names belongs to the default phase (`DEFAULT_PHASE_ID`,
 * end_of_deploy), which runs last; service removals belong to it too. A rolled-back manifest
 * has no phases: everything is in the default phase.
 */
import { type CommitPolicy, DEFAULT_PHASE_ID } from '@ployz/types';
import type { PhaseSpec } from './spec.ts';

export interface OrderedPhase {
  id: string;
  index: number;
  commit_policy: CommitPolicy;
  services: string[];
}

export function phasesOf(phases: readonly PhaseSpec[], services: readonly string[]): OrderedPhase[] {
  const out: OrderedPhase[] = [];
  const named = new Set<string>();
  for (const p of phases) {
    if (p.id === DEFAULT_PHASE_ID) continue;
    out.push({ id: p.id, index: out.length, commit_policy: p.commit, services: [...p.services] });
    for (const s of p.services) named.add(s);
  }
  const declaredDefault = phases.find((p) => p.id === DEFAULT_PHASE_ID)?.services ?? [];
  const rest = services.filter((s) => !named.has(s) && !declaredDefault.includes(s));
  out.push({
    id: DEFAULT_PHASE_ID,
    index: out.length,
    commit_policy: 'end_of_deploy',
    services: [...declaredDefault, ...rest],
  });
  return out;
}
