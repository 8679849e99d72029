/**
 * The adopt-first planner (seed 000), a pure function: desired components + the containers that
 * exist now → one action per component. It never looks at containers other than those holding a
 * component's name, so workloads and foreign containers are never in a plan's hands.
 */

import { LABELS } from '@ployz/identity';
import type { ComponentName, DesiredComponent } from './component-spec.ts';

export interface ObservedContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
  running: boolean;
  /** Docker health when the image defines a check, else 'none'. */
  health: 'healthy' | 'unhealthy' | 'starting' | 'none';
  startedAt: string | null;
  /** The image the container runs (its id) and that image's version label, when known. */
  imageId?: string;
  version?: string | null;
}

export type RecreateReason = 'config_drift' | 'parent_changed' | 'not_running';

export type PlannedAction =
  | { component: ComponentName; kind: 'adopt'; containerId: string }
  | { component: ComponentName; kind: 'create'; reason: 'missing' }
  | {
      component: ComponentName;
      kind: 'recreate';
      reason: RecreateReason;
      containerId: string;
      detail: string;
    }
  | { component: ComponentName; kind: 'collision'; containerId: string; name: string; detail: string }
  | { component: ComponentName; kind: 'blocked'; reason: 'parent_unavailable'; detail: string };

export interface PlanInput {
  installation: string;
  /** In dependency order: parents before children. */
  desired: DesiredComponent[];
  /** Every container whose name is one of the desired names (others are irrelevant). */
  observed: ObservedContainer[];
}

function short(id: string | undefined): string {
  return id === undefined ? '(none)' : id.slice(0, 12);
}

function foreignReason(c: ObservedContainer, installation: string): string | null {
  if (c.labels[LABELS.managed] !== 'true') return 'has no Ployz labels';
  if (c.labels[LABELS.kind] !== 'system') return `is a Ployz ${c.labels[LABELS.kind] ?? 'unknown'} container`;
  if (c.labels[LABELS.installation] !== installation) {
    return `belongs to installation ${c.labels[LABELS.installation] ?? '(unset)'}`;
  }
  return null;
}

export function planReconcile(input: PlanInput): PlannedAction[] {
  const byName = new Map(input.observed.map((c) => [c.name, c]));
  const actions = new Map<ComponentName, PlannedAction>();
  const result: PlannedAction[] = [];

  for (const want of input.desired) {
    const component = want.spec.component;
    const action = planOne(want, byName.get(want.spec.name), input.installation, (parent) =>
      actions.get(parent),
    );
    actions.set(component, action);
    result.push(action);
  }
  return result;
}

export interface RepairDecision {
  /** A full pass is due now. */
  repair: boolean;
  /** Components found stopped by this check (the next check compares against them). */
  stopped: Set<ComponentName>;
}

/**
 * The live repair's rule, over a plan made between full passes: repair when a component's
 * container is gone or its parent was replaced, or when it is stopped for the second check in a
 * row (one check gives Docker's restart policy its chance). Configuration drift alone waits for
 * the next daemon start; collisions and blocked components need the operator.
 */
/**
 * How long a component must have been seen stopped before the live repair recreates it: long
 * enough for Docker's restart policy, and for an engine that is shutting down (it stops every
 * container over several seconds) to be gone — recreating into a stopping engine left a
 * container half-removed ("device or resource busy") that no later pass could remove.
 */
export const STOPPED_GRACE_MS = 3000;

/**
 * The next "first seen stopped" times (component → ms), and which of them are due: seen stopped
 * for at least `graceMs`. Pure; the supervisor keeps the map between checks.
 */
export function stoppedTimes(
  since: ReadonlyMap<ComponentName, number>,
  stoppedNow: ReadonlySet<ComponentName>,
  now: number,
  graceMs = STOPPED_GRACE_MS,
): { since: Map<ComponentName, number>; due: Set<ComponentName> } {
  const next = new Map<ComponentName, number>();
  const due = new Set<ComponentName>();
  for (const c of stoppedNow) {
    const first = since.get(c) ?? now;
    next.set(c, first);
    if (now - first >= graceMs) due.add(c);
  }
  return { since: next, due };
}

export function repairDecision(
  plan: readonly PlannedAction[],
  stoppedBefore: ReadonlySet<ComponentName>,
): RepairDecision {
  const stopped = new Set<ComponentName>();
  let repair = false;
  for (const action of plan) {
    if (action.kind === 'create') repair = true;
    else if (action.kind === 'recreate' && action.reason === 'parent_changed') repair = true;
    else if (action.kind === 'recreate' && action.reason === 'not_running') {
      stopped.add(action.component);
      if (stoppedBefore.has(action.component)) repair = true;
    }
  }
  return { repair, stopped: repair ? new Set() : stopped };
}

function planOne(
  want: DesiredComponent,
  found: ObservedContainer | undefined,
  installation: string,
  parentAction: (c: ComponentName) => PlannedAction | undefined,
): PlannedAction {
  const component = want.spec.component;
  if (found) {
    const foreign = foreignReason(found, installation);
    if (foreign !== null) {
      return {
        component,
        kind: 'collision',
        containerId: found.id,
        name: found.name,
        detail: `container ${found.name} (${short(found.id)}) ${foreign}; Ployz will not touch it. Rename or remove it, or choose another container prefix`,
      };
    }
  }

  let parentId: string | null = null;
  let parentChanged = false;
  if (want.parent !== null) {
    const p = parentAction(want.parent);
    if (p === undefined || p.kind === 'collision' || p.kind === 'blocked') {
      return {
        component,
        kind: 'blocked',
        reason: 'parent_unavailable',
        detail: `its parent ${want.parent} is not available`,
      };
    }
    if (p.kind === 'adopt') parentId = p.containerId;
    else parentChanged = true;
  }

  if (!found) return { component, kind: 'create', reason: 'missing' };

  const recreate = (reason: RecreateReason, detail: string): PlannedAction => ({
    component,
    kind: 'recreate',
    reason,
    containerId: found.id,
    detail,
  });
  const haveHash = found.labels[LABELS.configHash];
  if (haveHash !== want.configHash) {
    return recreate(
      'config_drift',
      `config hash ${haveHash?.slice(0, 12) ?? '(none)'} != expected ${want.configHash.slice(0, 12)}`,
    );
  }
  if (want.parent !== null) {
    const haveParent = found.labels[LABELS.parentContainerId];
    if (parentChanged) return recreate('parent_changed', `its parent ${want.parent} is being replaced`);
    if (haveParent !== parentId) {
      return recreate(
        'parent_changed',
        `parent container ${short(haveParent)} != current ${want.parent} ${short(parentId ?? undefined)}`,
      );
    }
  }
  if (!found.running) return recreate('not_running', `container ${short(found.id)} is not running`);
  return { component, kind: 'adopt', containerId: found.id };
}
