/**
 * Executes an adopt-first plan on the real engine. Removals happen first, children before
 * parents (a netns owner is never pulled from under a child that is about to be replaced), then
 * creations in dependency order so each child gets its parent's new id. An edge app whose own
 * config drifted is replaced beside its old container instead (beside.ts). Adopted containers are
 * not touched at all.
 */
import { isPloyzError } from '@ployz/types';
import type { DockerEngine } from '../runtime/docker.ts';
import { replaceBeside } from './beside.ts';
import type { ComponentName, DesiredComponent } from './component-spec.ts';
import type { PlannedAction } from './plan.ts';

export type ComponentOutcome = 'adopted' | 'created' | 'recreated' | 'collision' | 'blocked' | 'failed';

export interface ReconcileResult {
  component: ComponentName;
  containerName: string;
  outcome: ComponentOutcome;
  containerId: string | null;
  previousContainerId: string | null;
  /** missing | config_drift | parent_changed | not_running | parent_unavailable | name_collision | error code */
  reason: string | null;
  detail: string | null;
  at: string;
}

export interface ReconcileEvents {
  onAction?(action: PlannedAction): void;
}

export async function executePlan(
  engine: DockerEngine,
  desired: DesiredComponent[],
  plan: PlannedAction[],
  events: ReconcileEvents = {},
): Promise<ReconcileResult[]> {
  const byComponent = new Map(desired.map((d) => [d.spec.component, d]));
  const now = () => new Date().toISOString();
  const setAside = new Map<ComponentName, string>();
  // Replaced beside the old one (docs/adr/0014-replace-beside.md): an edge app whose own config
  // changed while its parent stays and its old container runs. The old one is removed only once
  // the new one is healthy.
  const beside = new Set<ComponentName>();
  for (const action of plan) {
    const want = byComponent.get(action.component);
    if (action.kind !== 'recreate' || action.reason !== 'config_drift' || !want?.spec.beside) continue;
    const parent = plan.find((p) => p.component === want.parent);
    if (want.parent !== null && parent?.kind !== 'adopt') continue;
    if ((await engine.inspectByName(action.containerId))?.running === true) beside.add(action.component);
  }
  for (const action of [...plan].reverse()) {
    if (action.kind === 'recreate' && !beside.has(action.component)) {
      events.onAction?.(action);
      const removed = await engine.remove(action.containerId);
      if (removed.kind === 'set_aside') {
        setAside.set(
          action.component,
          `; the old container could not be deleted (${removed.cause}), so it was renamed ${removed.name} and is removed on a later pass`,
        );
      }
    }
  }

  const ids = new Map<ComponentName, string>();
  const results: ReconcileResult[] = [];
  for (const action of plan) {
    const want = byComponent.get(action.component);
    if (!want) continue;
    const base = { component: action.component, containerName: want.spec.name };
    switch (action.kind) {
      case 'adopt':
        ids.set(action.component, action.containerId);
        results.push({
          ...base,
          outcome: 'adopted',
          containerId: action.containerId,
          previousContainerId: null,
          reason: null,
          detail: 'identity matches: config hash and parent container id',
          at: now(),
        });
        break;
      case 'collision':
        results.push({
          ...base,
          outcome: 'collision',
          containerId: null,
          previousContainerId: null,
          reason: 'name_collision',
          detail: action.detail,
          at: now(),
        });
        break;
      case 'blocked':
        results.push({
          ...base,
          outcome: 'blocked',
          containerId: null,
          previousContainerId: null,
          reason: action.reason,
          detail: action.detail,
          at: now(),
        });
        break;
      case 'create':
      case 'recreate': {
        if (action.kind === 'create') events.onAction?.(action);
        const parentId = want.parent === null ? null : (ids.get(want.parent) ?? null);
        if (want.parent !== null && parentId === null) {
          results.push({
            ...base,
            outcome: 'blocked',
            containerId: null,
            previousContainerId: action.kind === 'recreate' ? action.containerId : null,
            reason: 'parent_unavailable',
            detail: `its parent ${want.parent} could not be started`,
            at: now(),
          });
          break;
        }
        try {
          let id: string;
          let besideDetail = '';
          if (action.kind === 'recreate' && beside.has(action.component)) {
            events.onAction?.(action);
            const out = await replaceBeside(engine, want, action.containerId, parentId);
            id = out.id;
            besideDetail = `; ${out.detail}`;
          } else {
            id = await engine.createStarted(want.spec, want.configHash, parentId);
          }
          ids.set(action.component, id);
          results.push({
            ...base,
            outcome: action.kind === 'create' ? 'created' : 'recreated',
            containerId: id,
            previousContainerId: action.kind === 'recreate' ? action.containerId : null,
            reason: action.reason,
            detail:
              action.kind === 'recreate'
                ? `${action.detail}${besideDetail}${setAside.get(action.component) ?? ''}`
                : 'no container with this name existed',
            at: now(),
          });
        } catch (error) {
          results.push({
            ...base,
            outcome: 'failed',
            containerId: null,
            previousContainerId: action.kind === 'recreate' ? action.containerId : null,
            reason: isPloyzError(error) ? error.code : 'DOCKER_ERROR',
            detail: error instanceof Error ? error.message : String(error),
            at: now(),
          });
        }
        break;
      }
      default: {
        const never: never = action;
        throw new Error(`unknown action ${JSON.stringify(never)}`);
      }
    }
  }
  return results;
}
