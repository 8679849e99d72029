/**
 * Phase ordering. Pure. Manifest phases run in dependency order (`after`), ties broken by their
 * order in the manifest; every service not named by a phase belongs to the default phase `default`
 * (end_of_deploy), which runs last. Service removals belong to the default phase too.
 */
import { type CommitPolicy, PloyzError } from '@ployz/types';
import { DEFAULT_PHASE, type PhaseSpec } from './spec.ts';

export interface OrderedPhase {
  id: string;
  index: number;
  commit_policy: CommitPolicy;
  services: string[];
}

export function orderPhases(phases: readonly PhaseSpec[], services: readonly string[]): OrderedPhase[] {
  const byId = new Map<string, PhaseSpec>();
  for (const p of phases) {
    if (byId.has(p.id)) throw invalid(`phase '${p.id}' is declared twice`);
    byId.set(p.id, p);
  }
  const owner = new Map<string, string>();
  for (const p of phases) {
    for (const s of p.services) {
      const prev = owner.get(s);
      if (prev !== undefined) throw invalid(`service '${s}' is in phases '${prev}' and '${p.id}'`);
      owner.set(s, p.id);
    }
    for (const a of p.after) {
      if (!byId.has(a)) throw invalid(`phase '${p.id}' runs after unknown phase '${a}'`);
    }
  }

  // Kahn's algorithm, picking the earliest-declared ready phase each round.
  const done = new Set<string>();
  const ordered: PhaseSpec[] = [];
  while (ordered.length < phases.length) {
    const next = phases.find((p) => !done.has(p.id) && p.after.every((a) => done.has(a)));
    if (next === undefined) {
      const stuck = phases.filter((p) => !done.has(p.id)).map((p) => p.id);
      throw invalid(`phases ${stuck.join(', ')} depend on each other in a cycle`);
    }
    done.add(next.id);
    ordered.push(next);
  }

  const out: OrderedPhase[] = [];
  const declaredDefault = ordered.find((p) => p.id === DEFAULT_PHASE);
  for (const p of ordered) {
    if (p.id === DEFAULT_PHASE) continue;
    out.push({ id: p.id, index: out.length, commit_policy: p.commit, services: [...p.services] });
  }
  const rest = services.filter((s) => !owner.has(s) || owner.get(s) === DEFAULT_PHASE);
  out.push({
    id: DEFAULT_PHASE,
    index: out.length,
    commit_policy: 'end_of_deploy',
    services: declaredDefault
      ? [...declaredDefault.services, ...rest.filter((s) => !declaredDefault.services.includes(s))]
      : rest,
  });
  return out;
}

function invalid(message: string): PloyzError {
  return new PloyzError('MANIFEST_INVALID', `${message}; fix the [[phases]] section of the manifest`);
}
